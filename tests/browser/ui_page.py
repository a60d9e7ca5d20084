"""Drives `provdb ui` in headless Chromium (selenium) for tests/ui_browser.rs.

Usage: ui_page.py PLAN.json. The plan (written by the Rust test, which works the expected
values out from the samples and the scenario's ground truth) names the steps:

- "query": a misspelt query shows the CLI's error with its caret and "did you mean"; then
  open /?q=QUERY; the table has `rows` rows, the graph `vertices` vertices, its edges the
  labels `edge_labels` (type and time); click
  vertex `click`; its attributes hold `attribute`; expand its ancestors one hop; the graph
  then holds every id of `ancestors`; the path from one of them to the vertex is the edge
  between them, highlighted; the SVG and PROV-JSON exports hold the vertices shown.
- "alert": /?view=alerts opens the Alerts tab; then from /, open the Alerts tab, click the
  alert; the graph shows `path` (ids, in red) and more vertices around it.
- "live": open the Machines tab before anything is ingested and print `READY`; the Rust test
  then publishes a fleet to `serve` and writes one JSON line on stdin, {"machines", "alerts"},
  what the archive holds by the CLI; the page must come to show as many machines and alerts
  without a reload, told of the change by the server (`/api/events`). Then, in the Alerts tab, each of `filters` (rule, minimum severity, machine,
  set in the page's controls as a user does) must list exactly its `ids`, the alerts the CLI's
  `provdb alerts` lists with the same filters.

Each step names the server (`base`) it runs against. A screenshot of each step goes to the
plan's `screenshots` folder. Exits 1 with the reason
on the first expectation that fails.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1100"):
        options.add_argument(arg)
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(path):
            options.binary_location = path
            break
    driver_path = next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
                        if os.path.exists(p)), None)
    service = Service(driver_path) if driver_path else Service()
    return webdriver.Chrome(service=service, options=options)


def fail(message):
    print("FAILED: " + message, flush=True)
    sys.exit(1)


class Page:
    def __init__(self, driver, shots):
        self.d = driver
        self.base = None
        self.shots = shots
        self.timings = {}

    def shot(self, name):
        path = os.path.join(self.shots, name + ".png")
        self.d.save_screenshot(path)
        print("screenshot " + path, flush=True)

    def wait(self, what, predicate, timeout=30):
        # The graph is drawn anew on every change: an element read while that happens is
        # stale, and the predicate is simply tried again.
        wait = WebDriverWait(self.d, timeout, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException])
        try:
            return wait.until(lambda d: predicate())
        except TimeoutException:
            self.shot("failed")
            fail("timed out waiting for " + what)

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def vertex_ids(self, css="#graph g.vertex"):
        # In one script call, so that a redraw cannot come between two reads.
        return set(self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.id);", css))


def step_query(p, plan):
    from urllib.parse import quote
    # A query with a misspelt type: the CLI's message, caret and "did you mean" on the page.
    p.d.get(p.base + "/?q=" + quote("(t:tsk) -[:clone]-> (c)", safe=""))
    p.wait("the query error", lambda: p.d.find_element(By.ID, "query-error").is_displayed())
    error = p.d.find_element(By.ID, "query-error").text
    for needle in ("unknown vertex type `tsk` at line 1, column 4", "^^^", "did you mean `task`?"):
        if needle not in error:
            fail(f"the error shown lacks {needle!r}: {error!r}")
    p.shot("0-query-error")
    started = time.time()
    p.d.get(p.base + "/?q=" + quote(plan["query"], safe=""))
    p.wait("the result table", lambda: len(p.all("#results tbody tr")) > 0)
    p.timings["page_load_to_results_ms"] = round((time.time() - started) * 1000)
    nav = p.d.execute_script(
        "const t = performance.getEntriesByType('navigation')[0];"
        "return t ? t.loadEventEnd - t.startTime : null;")
    p.timings["page_load_event_ms"] = nav
    rows = len(p.all("#results tbody tr"))
    if rows != plan["rows"]:
        fail(f"table has {rows} rows, expected {plan['rows']}")
    vertices = len(p.vertex_ids())
    if vertices != plan["vertices"]:
        fail(f"graph has {vertices} vertices, expected {plan['vertices']}")
    # Edges are labelled with their type and time; vertices with type, pid and path name.
    labels = sorted(p.d.execute_script(
        "return [...document.querySelectorAll('#graph g.edge text')].map(t => t.textContent);"))
    if labels != plan["edge_labels"]:
        fail(f"edge labels {labels}, expected {plan['edge_labels']}")
    p.shot("1-query")
    target = plan["click"]
    node = p.all(f'#graph g.vertex[data-id="{target}"]')
    if not node:
        fail("vertex to click is not drawn: " + target)
    node[0].click()
    p.wait("the vertex's attributes",
           lambda: plan["attribute"] in (p.d.find_element(By.ID, "details").text or ""))
    # The graph is drawn anew on each change: look the vertex up again.
    if "selected" not in p.all(f'#graph g.vertex[data-id="{target}"]')[0].get_attribute("class"):
        fail("clicked vertex is not selected")
    p.shot("2-vertex")
    hops = p.d.find_element(By.ID, "hops")
    hops.clear()
    hops.send_keys("1")
    p.d.find_element(By.ID, "expand-in").click()
    expected = set(plan["ancestors"])
    p.wait("the ancestors", lambda: expected <= p.vertex_ids())
    p.shot("3-expanded")
    print("expanded: %d vertices" % len(p.vertex_ids()), flush=True)
    # The path between an ancestor and the vertex: the one edge between them, highlighted.
    ancestor = sorted(expected - {target})[0]
    p.all(f'#graph g.vertex[data-id="{ancestor}"]')[0].click()
    p.wait("the ancestor selected", lambda: ancestor in p.vertex_ids("#graph g.vertex.selected"))
    p.d.find_element(By.ID, "path-mode").click()
    p.all(f'#graph g.vertex[data-id="{target}"]')[0].click()
    p.wait("the highlighted path",
           lambda: p.vertex_ids("#graph g.vertex.highlight") == {ancestor, target})
    edges = p.vertex_ids("#graph g.edge.highlight")
    if len(edges) != 1:
        fail(f"{len(edges)} edges highlighted between adjacent vertices, expected 1")
    p.shot("3b-path")
    # Exports of what is shown: the SVG draws every vertex; the PROV-JSON holds each.
    shown = p.vertex_ids()
    p.d.execute_cdp_cmd("Page.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": os.path.abspath(p.shots)})
    svg_file = os.path.join(p.shots, "provdb-graph.svg")
    prov_file = os.path.join(p.shots, "provdb-graph.prov.json")
    for f in (svg_file, prov_file):
        if os.path.exists(f):
            os.remove(f)
    p.d.find_element(By.ID, "export-svg").click()
    p.d.find_element(By.ID, "export-prov").click()
    p.wait("the downloads", lambda: os.path.exists(svg_file) and os.path.exists(prov_file))
    import xml.etree.ElementTree as ET
    time.sleep(0.5)
    root = ET.parse(svg_file).getroot()
    drawn = {g.get("data-id") for g in root.iter("{http://www.w3.org/2000/svg}g")
             if "vertex" in (g.get("class") or "").split()}
    if drawn != shown:
        fail(f"the SVG export draws {len(drawn)} vertices, the page {len(shown)}")
    with open(prov_file) as f:
        doc = json.load(f)
    exported = {k.removeprefix("cf:") for s in ("activity", "entity", "agent")
                for k in doc.get(s, {})}
    if exported != shown:
        fail(f"the PROV-JSON export holds {len(exported)} vertices, the page shows {len(shown)}")
    print(f"exports: {len(drawn)} vertices in the SVG and the PROV-JSON", flush=True)


def step_alert(p, plan):
    # `/?view=alerts` opens the Alerts tab (a view to share or bookmark).
    p.d.get(p.base + "/?view=alerts")
    p.wait("the Alerts tab of /?view=alerts",
           lambda: p.d.find_element(By.ID, "view-alerts").is_displayed()
           and len(p.all("#alerts-table tbody tr")) > 0)
    p.d.get(p.base + "/")
    p.d.find_element(By.CSS_SELECTOR, 'nav button[data-view="alerts"]').click()
    p.wait("the alert list", lambda: len(p.all("#alerts-table tbody tr")) > 0)
    rows = p.all("#alerts-table tbody tr")
    if len(rows) != 1:
        fail(f"{len(rows)} alerts listed, expected 1")
    if plan["rule"] not in rows[0].text:
        fail("alert row does not name " + plan["rule"] + ": " + rows[0].text)
    p.shot("4-alerts")
    rows[0].click()
    path = set(plan["path"])
    p.wait("the alert's path", lambda: path <= p.vertex_ids("#graph g.vertex.on-path"))
    on_path = len(p.vertex_ids("#graph g.vertex.on-path"))
    if on_path != len(path):
        fail(f"{on_path} vertices drawn on the path, expected {len(path)}")
    if len(p.vertex_ids()) <= on_path:
        fail("no neighbourhood around the path")
    if len(p.all("#graph g.edge.on-path")) < 1:
        fail("no path edge drawn")
    p.shot("5-alert-path")


def step_live(p, plan):
    p.d.get(p.base + "/")
    p.d.find_element(By.CSS_SELECTOR, 'nav button[data-view="machines"]').click()
    p.wait("a first poll", lambda: p.d.execute_script("return document.body.dataset.polls") is not None)
    p.d.execute_script("window.__notReloaded = true;")
    before = len(p.all("#machines-table tbody tr"))
    p.shot("6-live-before")
    print("READY", flush=True)
    # The Rust test publishes the fleet, then sends what the archive holds (as the CLI says).
    expected = json.loads(sys.stdin.readline())
    p.wait("the machines of the fleet",
           lambda: len(p.all("#machines-table tbody tr")) == expected["machines"], timeout=60)
    p.wait("the alert badge",
           lambda: p.d.find_element(By.ID, "alert-count").text == str(expected["alerts"]),
           timeout=60)
    if not p.d.execute_script("return window.__notReloaded === true"):
        fail("the page reloaded")
    # The server pushed the changes (`/api/events`), the page did not have to poll for them.
    pushes = p.d.execute_script("return Number(document.body.dataset.pushes || 0)")
    if pushes < 1 or p.d.execute_script("return document.body.dataset.live") != "push":
        fail(f"no change pushed by the server ({pushes} events)")
    p.shot("7-live-after")
    print(f"live: {before} machines before, {len(p.all('#machines-table tbody tr'))} after",
          flush=True)
    alert_filters(p, expected["filters"])


SEVERITIES = ["low", "medium", "high", "critical"]


def alert_ids(p):
    return set(p.d.execute_script(
        "return [...document.querySelectorAll('#alerts-table tbody tr')].map(r => r.dataset.id);"))


def set_filters(p, wanted):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    for key, css in (("rule", "#f-rule"), ("severity", "#f-severity")):
        Select(p.d.find_element(By.CSS_SELECTOR, css)).select_by_value(wanted.get(key, ""))
    machine = p.d.find_element(By.ID, "f-machine")
    machine.send_keys(Keys.CONTROL, "a")
    machine.send_keys(Keys.BACKSPACE)
    # Typed, then Enter, as a user would (no click elsewhere to fire `change`).
    machine.send_keys(str(wanted.get("machine", "")), Keys.ENTER)


def alert_filters(p, filters):
    p.d.find_element(By.CSS_SELECTOR, 'nav button[data-view="alerts"]').click()
    everything = alert_ids(p)
    for i, f in enumerate(filters):
        set_filters(p, f["filter"])
        ids = {str(x) for x in f["ids"]}
        p.wait(f"the alerts of filter {f['filter']}", lambda: alert_ids(p) == ids)
        shown = p.d.find_element(By.ID, "alerts-shown").text
        if shown != f"{len(ids)} of {len(everything)} shown":
            fail(f"filter {f['filter']}: the page says {shown!r}")
        if p.d.find_element(By.ID, "alert-count").text != str(len(everything)):
            fail("the Alerts badge counts the filtered list, not every alert")
        # In one script call: the list is drawn anew on every poll.
        rows = p.d.execute_script(
            "return [...document.querySelectorAll('#alerts-table tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent));")
        for cells in rows:
            if "rule" in f["filter"] and cells[2] != f["filter"]["rule"]:
                fail(f"filter {f['filter']} lists an alert of rule {cells[2]}")
            if "machine" in f["filter"] and cells[3] != str(f["filter"]["machine"]):
                fail(f"filter {f['filter']} lists an alert of machine {cells[3]}")
            if "severity" in f["filter"] and SEVERITIES.index(cells[1]) < SEVERITIES.index(
                    f["filter"]["severity"]):
                fail(f"filter {f['filter']} lists an alert of severity {cells[1]}")
        p.shot(f"8-alert-filter-{i}")
        print(f"alert filter {f['filter']}: {len(ids)} of {len(everything)} alerts", flush=True)
    set_filters(p, {})
    p.wait("every alert again", lambda: alert_ids(p) == everything)


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    os.makedirs(plan["screenshots"], exist_ok=True)
    driver = browser()
    try:
        page = Page(driver, plan["screenshots"])
        for step in plan["steps"]:
            page.base = step["base"]
            {"query": step_query, "alert": step_alert, "live": step_live}[step["kind"]](page, step)
        # The misspelt query's 400 is expected; any other error is not.
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
                  and "/api/graph?q=(t%3Atsk)" not in e.get("message", "")]
        if errors:
            fail("browser console errors: " + json.dumps(errors))
        print("TIMINGS " + json.dumps(page.timings), flush=True)
        print("OK", flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
