"""Opens the dashboard at a URL in headless Chromium, enters the API key in its form as a user
would, waits for the charts, and prints one JSON object: the DOM, and the console errors and
uncaught exceptions before and after the key was entered.

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in, fd 4
out, NUL-terminated JSON), so it needs nothing beyond the standard library.

    python3 browser.py CHROMIUM URL KEY TIMEOUT_SECONDS
"""

import json
import os
import subprocess
import sys
import tempfile
import time

chromium, url, key, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + timeout

to_browser, browser_in = os.pipe()
browser_out, from_browser = os.pipe()


def child_fds():
    # Moved out of the way first: a pipe end may already be fd 3 or 4.
    read_end, write_end = os.dup(to_browser), os.dup(from_browser)
    os.dup2(read_end, 3)
    os.dup2(write_end, 4)


profile = tempfile.mkdtemp(prefix="duff-browser-")
browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
     "--no-first-run", "--disable-background-networking", "--disable-component-update",
     "--disable-sync", "--remote-debugging-pipe", f"--user-data-dir={profile}",
     "--window-size=1280,2200", "about:blank"],
    # Python's own pipe ends are not inheritable, so only fds 3 and 4 (and stdio) pass on.
    close_fds=False, preexec_fn=child_fds,
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_browser)
os.close(from_browser)

buffered = b""
next_id = 0
events = []


def read_message():
    global buffered
    while b"\0" not in buffered:
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from Chromium")
        chunk = os.read(browser_out, 1 << 16)
        if not chunk:
            raise EOFError("Chromium closed the pipe")
        buffered += chunk
    message, buffered = buffered.split(b"\0", 1)
    return json.loads(message)


def call(method, session=None, **params):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    os.write(browser_in, json.dumps(message).encode() + b"\0")
    while True:
        reply = read_message()
        if reply.get("id") == next_id:
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]
        events.append(reply)


def evaluate(session, expression):
    result = call("Runtime.evaluate", session, expression=expression, returnByValue=True)
    return result["result"].get("value")


def wait_for(session, expression, what):
    while time.monotonic() < deadline:
        if evaluate(session, expression):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s")


def problems():
    """Console errors and uncaught exceptions seen so far (and forgets them)."""
    seen = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            seen.append("exception: " + json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            seen.append("console.error: " + json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            seen.append("log: " + params["entry"].get("text", "")[:500])
    events.clear()
    return seen


try:
    target = call("Target.createTarget", url="about:blank")["targetId"]
    session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        call(f"{domain}.enable", session)
    call("Page.navigate", session, url=url)
    wait_for(session, "document.body && document.body.dataset.ready === '1'", "the page loaded")
    key_form_shown = evaluate(session, "!document.getElementById('key-form').hidden")
    # The console reports a refused request a little after the script saw it: let those in.
    time.sleep(1)
    evaluate(session, "0")
    before = problems()
    if key_form_shown:
        evaluate(session, f"""(() => {{
            document.getElementById('key-input').value = {json.dumps(key)};
            document.getElementById('key-form').requestSubmit();
        }})()""")
    charts = "['products', 'status', 'channels', 'days']" \
        ".every(c => document.querySelector(`[data-chart=${c}]`))"
    wait_for(session, charts, "every chart drawn")
    # The runs section loads beside the charts.
    wait_for(session, "!!document.querySelector('[data-chart=run-quality]')", "the runs drawn")
    time.sleep(0.5)  # anything still logging
    dom = evaluate(session, "document.documentElement.outerHTML")
    evaluate(session, "0")  # collects the events sent meanwhile
    print(json.dumps({
        "key_form_shown": key_form_shown,
        "problems_before_key": before,
        "problems_after_key": problems(),
        "dom": dom,
    }))
except Exception as failure:
    # What the page showed, for the test's failure message.
    deadline = time.monotonic() + 10
    try:
        dom = evaluate(session, "document.documentElement.outerHTML")
    except Exception:
        dom = None
    print(json.dumps({"error": repr(failure), "problems": problems(), "dom": dom}))
    sys.exit(1)
finally:
    browser.kill()
    browser.wait()
    subprocess.run(["rm", "-rf", profile], check=False)
