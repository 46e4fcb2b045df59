//! A TCP relay on loopback that keeps every byte its clients send: put between the Lambdas and
//! the emulator, it shows what a request carried on the wire (the emulator's Batch keeps no
//! SubmitJob parameters). It changes nothing it relays.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Streams = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

pub struct Recorder {
    pub port: u16,
    sent: Streams,
}

impl Recorder {
    /// Relays every connection to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent: Streams = Arc::default();
        let streams = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let record = Arc::new(Mutex::new(Vec::new()));
                streams.lock().unwrap().push(record.clone());
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || relay(client_in, server_out, Some(&record)));
                std::thread::spawn(move || relay(server, client, None));
            }
        });
        Recorder { port, sent }
    }

    /// The JSON bodies of the `POST {path}` requests relayed so far, in order per connection.
    pub fn json_bodies(&self, path: &str) -> Vec<serde_json::Value> {
        let start = format!("POST {path} HTTP/1.1\r\n");
        let streams = self.sent.lock().unwrap().clone();
        let mut bodies = Vec::new();
        for stream in streams {
            let bytes = stream.lock().unwrap().clone();
            let mut at = 0;
            while let Some(found) = find(&bytes[at..], start.as_bytes()) {
                let head_start = at + found;
                let Some(head_len) = find(&bytes[head_start..], b"\r\n\r\n") else {
                    break;
                };
                let head = String::from_utf8_lossy(&bytes[head_start..head_start + head_len]);
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let body_start = head_start + head_len + 4;
                let Some(body) = bytes.get(body_start..body_start + length) else {
                    break; // still arriving
                };
                bodies.push(serde_json::from_slice(body).expect("a JSON request body"));
                at = body_start + length;
            }
        }
        bodies
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn relay(mut from: TcpStream, mut to: TcpStream, record: Option<&Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if let Some(record) = record {
            record.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
