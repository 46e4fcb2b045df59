//! A lake's [`RowObserver`] on a thread of its own, fed each window's `orders` rows in input
//! order through a short queue: a slow observer holds the run back by a window or two, never
//! by the file.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;

use crate::lake::storage::RowObserver;

enum Message {
    Rows(Vec<RecordBatch>),
    /// Every row was sent: the observer may finish.
    Finish,
}

/// The observer's thread. Dropped without [`Observing::finish`] (a failed attempt), it ends
/// without finishing its observer.
pub(super) struct Observing {
    queue: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
}

/// Windows queued for the observer at most.
const QUEUED_WINDOWS: usize = 2;

impl Observing {
    pub fn spawn(mut observer: Box<dyn RowObserver>) -> Self {
        let (queue, messages) = sync_channel::<Message>(QUEUED_WINDOWS);
        let thread = std::thread::Builder::new()
            .name("duff-observe".into())
            .spawn(move || {
                for message in messages {
                    match message {
                        Message::Rows(batches) => {
                            for batch in &batches {
                                observer.rows(batch);
                            }
                        }
                        Message::Finish => return observer.finish(),
                    }
                }
            });
        match thread {
            Ok(thread) => Observing {
                queue: Some(queue),
                thread: Some(thread),
            },
            Err(e) => {
                // Observing is an optimisation: without a thread, the run goes on without it.
                tracing::warn!(error = %e, "no thread for the lake's row observer");
                Observing {
                    queue: None,
                    thread: None,
                }
            }
        }
    }

    /// Queues a window's rows (blocking while the queue is full).
    pub fn rows(&self, batches: Vec<RecordBatch>) {
        if let Some(queue) = &self.queue {
            // Fails only when the observer's thread panicked: `finish` says so.
            let _ = queue.send(Message::Rows(batches));
        }
    }

    /// Tells the observer every row was sent, so that it finishes on its thread while the
    /// caller goes on (the run's last rows are still being encoded).
    pub fn close(&mut self) {
        if let Some(queue) = self.queue.take() {
            let _ = queue.send(Message::Finish);
        }
    }

    /// Waits for the observer to see every queued row and finish.
    pub fn finish(mut self) {
        self.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the lake's row observer panicked; its lake reads the files instead");
        }
    }
}

impl Drop for Observing {
    fn drop(&mut self) {
        // Without a Finish message (never closed), the thread ends at the closed queue.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::lake::input::LocalInput;
    use crate::lake::manifest::Manifest;
    use crate::lake::storage::{Commit, Lake, Stage};
    use crate::{Error, LocalLake, RunOptions, RunOutcome};

    #[derive(Default)]
    struct Seen {
        order_ids: Vec<i64>,
        finished: bool,
        /// The observer takes this long to finish.
        finish_takes: std::time::Duration,
        /// Whether the observer had finished when the lake settled.
        finished_at_settle: Option<bool>,
    }

    struct Recorder(Arc<Mutex<Seen>>);

    impl RowObserver for Recorder {
        fn rows(&mut self, orders: &RecordBatch) {
            let ids = orders.column_by_name("order_id").unwrap();
            let ids = ids.as_primitive::<Int64Type>().values();
            self.0.lock().unwrap().order_ids.extend_from_slice(ids);
        }

        fn finish(self: Box<Self>) {
            let takes = self.0.lock().unwrap().finish_takes;
            std::thread::sleep(takes);
            self.0.lock().unwrap().finished = true;
        }
    }

    /// A local lake that records what its observer sees; with a gate, its stage is
    /// [`FinishFirst`] and the gate says whether its wait ended with the observer finished.
    struct Watched(
        LocalLake,
        Arc<Mutex<Seen>>,
        Option<Arc<Mutex<Option<bool>>>>,
    );

    impl Lake for Watched {
        fn uri(&self) -> String {
            self.0.uri()
        }
        fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
            self.0.read_manifest(run_id)
        }
        fn stage(&self, stem: &str) -> Result<Box<dyn Stage>, Error> {
            let inner = self.0.stage(stem)?;
            Ok(match &self.2 {
                Some(gate) => Box::new(FinishFirst {
                    inner,
                    seen: self.1.clone(),
                    waited_for_finish: gate.clone(),
                }),
                None => inner,
            })
        }
        fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error> {
            self.0.commit(manifest, overwrite)
        }
        fn settle(&self) -> Result<(), Error> {
            let mut seen = self.1.lock().unwrap();
            seen.finished_at_settle = Some(seen.finished);
            self.0.settle()
        }
        fn observer(&self, _: &str, _: chrono::NaiveDate) -> Option<Box<dyn RowObserver>> {
            Some(Box::new(Recorder(self.1.clone())))
        }
    }

    fn run(csv: &str) -> (RunOutcome, Seen) {
        run_with(csv, Seen::default())
    }

    fn run_with(csv: &str, seen: Seen) -> (RunOutcome, Seen) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("orders.csv");
        std::fs::write(&input, csv).unwrap();
        let seen = Arc::new(Mutex::new(seen));
        let lake = Watched(
            LocalLake::open(dir.path().join("lake")).unwrap(),
            seen.clone(),
            None,
        );
        // Small ranges: many windows, each of several ranges.
        let options = RunOptions {
            chunk_bytes: 2048,
            threads: 2,
            ..RunOptions::default()
        };
        let outcome = crate::run(&LocalInput::open(&input).unwrap(), &lake, &options, &|_| {});
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        (outcome.unwrap(), seen)
    }

    const HEADER: &str = "client_id,client_name,order_id,product_id,product_description,product_price,product_ccf,product_volume,point_of_sale_channel,status";

    fn row(order: i64, product: i64) -> String {
        format!("1001,Moe's Tavern,{order},{product},Duff Lager,1.25,24,0.355,Retail,delivered")
    }

    #[test]
    fn the_observer_sees_every_written_row_in_input_order_then_finishes() {
        let mut csv = format!("{HEADER}\n");
        let mut written = Vec::new();
        for order in 1..=3000 {
            csv += &row(order, 1);
            csv.push('\n');
            written.push(order);
            if order % 50 == 0 {
                // A duplicate and a bad row: neither is written, so neither is seen.
                csv += &row(order, 1);
                csv += "\n1001,Moe's Tavern,not-a-number,1,Duff,1.25,24,0.355,Retail,delivered\n";
            }
        }
        let (outcome, seen) = run(&csv);
        let RunOutcome::Succeeded(manifest) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(manifest.counts.quarantined > 0 && manifest.counts.exact_duplicates > 0);
        assert_eq!(seen.order_ids, written);
        assert!(seen.finished);
        assert_eq!(seen.finished_at_settle, Some(true));
    }

    #[test]
    fn the_lake_settles_only_once_a_slow_observer_has_finished() {
        let rows: String = (1..=200).map(|o| row(o, 1) + "\n").collect();
        let slow = Seen {
            finish_takes: std::time::Duration::from_millis(300),
            ..Seen::default()
        };
        let (outcome, seen) = run_with(&format!("{HEADER}\n{rows}"), slow);
        assert!(matches!(outcome, RunOutcome::Succeeded(_)), "{outcome:?}");
        // The settle (a Delta lake's fold) uses what the observer leaves.
        assert_eq!(seen.finished_at_settle, Some(true));
    }

    /// A stage whose `dim_clients` file (written after the last window is assembled, beside
    /// the last rows' encoding) waits until the observer has finished, for up to 20 s.
    struct FinishFirst {
        inner: Box<dyn Stage>,
        seen: Arc<Mutex<Seen>>,
        waited_for_finish: Arc<Mutex<Option<bool>>>,
    }

    impl Stage for FinishFirst {
        fn create(&self, rel: &str) -> Result<Box<dyn crate::lake::storage::ObjectWriter>, Error> {
            if rel.contains("dim_clients") {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while !self.seen.lock().unwrap().finished && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                *self.waited_for_finish.lock().unwrap() = Some(self.seen.lock().unwrap().finished);
            }
            self.inner.create(rel)
        }
        fn publish(&self, files: &[crate::lake::manifest::WrittenFile]) -> Result<(), Error> {
            self.inner.publish(files)
        }
        fn abort(&self) {
            self.inner.abort()
        }
    }

    #[test]
    fn the_observer_finishes_while_the_last_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("orders.csv");
        let rows: String = (1..=500).map(|o| row(o, 1) + "\n").collect();
        std::fs::write(&input, format!("{HEADER}\n{rows}")).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let waited = Arc::new(Mutex::new(None));
        let lake = Watched(
            LocalLake::open(dir.path().join("lake")).unwrap(),
            seen,
            Some(waited.clone()),
        );
        let input = LocalInput::open(&input).unwrap();
        let outcome = crate::run(&input, &lake, &RunOptions::default(), &|_| {});
        assert!(
            matches!(outcome, Ok(RunOutcome::Succeeded(_))),
            "{outcome:?}"
        );
        // The dimension file was created, and only once the observer had finished.
        assert_eq!(*waited.lock().unwrap(), Some(true));
    }

    #[test]
    fn a_rejected_file_is_never_finished() {
        // Every row bad: the run fails whole and its rows are never published.
        let bad = "1001,Moe's Tavern,x,1,Duff,1.25,24,0.355,Retail,delivered\n".repeat(500);
        let (outcome, seen) = run(&format!("{HEADER}\n{}{bad}", row(1, 1) + "\n"));
        assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
        assert!(!seen.finished);
    }
}
