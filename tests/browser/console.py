"""Drives the ssp-sim console in a real headless Chromium (Selenium), against a simulator that
tests/console.rs started: requests sent through the proxy appear without a reload; opening
one shows its checks and decoded claims; "make this fail" makes the next matching request
fail with the chosen error; the faults and coverage pages count it; consumer text holding
markup is shown as text and never runs.

Environment (set by tests/console.rs): SIM_ADDR, ADMIN_URL, ADMIN_TOKEN, CERTS, SSP_SIM,
ROOT, FROM_ASID, TO_ASID, METADATA, CHROMIUM, CHROMEDRIVER; SCREENSHOTS (optional) is a
directory to write the README's screenshots into.
"""

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

ENV = os.environ
HOST, PORT = ENV["SIM_ADDR"].rsplit(":", 1)
ROOT = ENV["ROOT"]
METADATA = ENV["METADATA"]


def token(aud=ROOT):
    """A valid JWT from `ssp-sim jwt`, with `aud` replaced when asked."""
    made = subprocess.run(
        [ENV["SSP_SIM"], "jwt", "--interaction", METADATA, "--aud", ROOT],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    if aud == ROOT:
        return made
    header, payload, signature = made.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["aud"] = aud
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def send(trace=None, jwt=None, path="/metadata", headers=None):
    """GET {ROOT}{path} through the simulator with the consumer certificate; the status."""
    context = ssl.create_default_context(cafile=os.path.join(ENV["CERTS"], "ca.pem"))
    context.load_cert_chain(os.path.join(ENV["CERTS"], "client.pem"),
                            os.path.join(ENV["CERTS"], "client-key.pem"))
    connection = http.client.HTTPSConnection(HOST, int(PORT), context=context, timeout=10)
    sent = {
        "Ssp-TraceID": trace or str(uuid.uuid4()),
        "Ssp-From": ENV["FROM_ASID"],
        "Ssp-To": ENV["TO_ASID"],
        "Ssp-InteractionID": METADATA,
        "Accept": "application/fhir+json",
        "Authorization": "Bearer " + (jwt or token()),
    }
    sent.update(headers or {})
    connection.request("GET", "/" + ROOT + path, headers=sent)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok:", message)


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = ENV["CHROMIUM"]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1600,950"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(ENV["CHROMEDRIVER"]), options=options)
    wait = WebDriverWait(driver, 15)
    shots = ENV.get("SCREENSHOTS")
    try:
        run(driver, wait, shots)
    except Exception:
        print("page text at failure:\n" + driver.find_element(By.TAG_NAME, "body").text, file=sys.stderr)
        for entry in driver.get_log("browser"):
            print("browser log:", entry, file=sys.stderr)
        raise
    finally:
        driver.quit()
    print("all console checks passed")


def row_text(driver, trace):
    """The text of the list row whose trace id cell is `trace`, or None. Read in the page in
    one go: the list is redrawn whenever an entry arrives."""
    return driver.execute_script(
        "for (const row of document.querySelectorAll('#rows tr')) {"
        "  if (row.querySelector('td.trace').textContent === arguments[0]) return row.innerText; }"
        "return null;", trace)


def wait_row(driver, wait, trace):
    """The row's text, once the row has appeared without a reload."""
    return wait.until(lambda d: row_text(d, trace), f"a row for {trace} appears without a reload")


def open_row(driver, wait, trace):
    """Opens the request whose trace id is `trace`."""
    wait_row(driver, wait, trace)
    driver.execute_script(
        "for (const row of document.querySelectorAll('#rows tr')) {"
        "  if (row.querySelector('td.trace').textContent === arguments[0]) row.click(); }", trace)
    return wait.until(ec.visibility_of_element_located((By.ID, "detail")))


def run(driver, wait, shots):
    driver.get(ENV["ADMIN_URL"] + "/")
    # The admin token is asked for once and sent as a header from then on.
    field = wait.until(ec.visibility_of_element_located((By.ID, "token")))
    field.send_keys(ENV["ADMIN_TOKEN"])
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "live"))
    check(driver.execute_script("return sessionStorage.getItem('ssp-sim-admin-token')") == ENV["ADMIN_TOKEN"],
          "the token is kept in sessionStorage")

    # Requests appear live.
    good = str(uuid.uuid4())
    status, _ = send(good)
    check(status == 200, f"a good request passes ({status})")
    row = wait_row(driver, wait, good)
    check("Test consumer" in row and "200" in row, "its row names the consumer and the status")

    refused = str(uuid.uuid4())
    wrong = token(aud="https://wrong.example/gpconnect")
    status, _ = send(refused, jwt=wrong)
    check(status == 400, f"a token with the wrong aud is refused ({status})")
    check("bad-request" in wait_row(driver, wait, refused), "the refused row shows its catalogue error")

    # Opening it: the checks in order, the decoded claims with each rule's verdict, no token.
    detail = open_row(driver, wait, refused)
    checks = [li.text for li in detail.find_elements(By.CSS_SELECTOR, "ol.checks li")]
    check(checks[0].startswith("method pass") and checks[-1].startswith("provider fail"),
          f"every check in order with its verdict: {checks}")
    claims = {r.find_elements(By.TAG_NAME, "td")[0].text: r.text
              for r in detail.find_elements(By.CSS_SELECTOR, "table.claims tr")}
    check("aud" in claims and "https://wrong.example/gpconnect" in claims["aud"] and "claim.aud" in claims["aud"],
          "the aud claim is decoded with its broken rule beside it")
    check("iss" in claims and "pass" in claims["iss"], "a good claim shows its pass")
    source = driver.page_source
    # The refusal's `WWW-Authenticate: Bearer error="invalid_token"` challenge may be shown; a
    # token (`Bearer ey...`) never.
    check(wrong.split(".")[1] not in source and "Bearer ey" not in source, "no bearer token on the page")
    check(ENV["ADMIN_TOKEN"] not in source, "nor the admin token")
    check("OperationOutcome" in detail.text, "the error payload is shown")
    if shots:
        os.makedirs(shots, exist_ok=True)
        send(headers={"Ssp-From": "100000000001"})
        send()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rows tr")) >= 4)
        driver.execute_script("document.querySelector('#detail ol.checks').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "console.png"))

    # Make this fail: the next request of the same sender, receiver and interaction gets
    # the chosen catalogue error, once.
    open_row(driver, wait, good)
    form = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#detail .fail-form")))
    Select(form.find_element(By.NAME, "kind")).select_by_value("error")
    Select(form.find_element(By.NAME, "error")).select_by_value("no-patient-consent")
    times = form.find_element(By.NAME, "times")
    times.clear()
    times.send_keys("2")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail .result"), "added"))
    failed = str(uuid.uuid4())
    status, body = send(failed)
    check(status == 403 and b"NO_PATIENT_CONSENT" in body, f"the next request fails as chosen ({status})")
    check("no-patient-consent" in wait_row(driver, wait, failed), "and shows so in the list")

    # The fault list shows what it fired, and deletes it.
    driver.find_element(By.CSS_SELECTOR, "nav [data-tab=faults]").click()
    fired = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#fault-rows tr[data-id] td.fired")))
    check(fired.text == "1", f"the fault has fired once ({fired.text})")
    driver.find_element(By.CSS_SELECTOR, "#fault-rows tr[data-id] button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "fault-rows"), "no faults installed"))
    status, _ = send()
    check(status == 200, "once deleted the fault acts no more")

    # The coverage page counts it.
    driver.find_element(By.CSS_SELECTOR, "nav [data-tab=coverage]").click()
    card = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, f"#coverage-body .consumer[data-asid='{ENV['FROM_ASID']}']")))
    check("no-patient-consent × 1" in card.find_element(By.CSS_SELECTOR, ".provider-errors").text,
          "coverage counts the provider error")
    check("claim.aud × 1" in card.find_element(By.CSS_SELECTOR, ".jwt-rules").text,
          "coverage counts the broken JWT rule")
    never = card.find_element(By.CSS_SELECTOR, ".never-seen").text
    check("no-patient-consent" not in never and "endpoint-varies" in never, "and lists what was never seen")
    if shots:
        driver.save_screenshot(os.path.join(shots, "coverage.png"))

    # The mock SDS as loaded.
    driver.find_element(By.CSS_SELECTOR, "nav [data-tab=sds]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "sds-body"), ROOT))
    sds = driver.find_element(By.ID, "sds-body").text
    check("Test surgery" in sds and "Test consumer" in sds and "builtin:demo" in sds,
          "the mock SDS shows consumers, providers, endpoints and backends")
    check("not reloaded since start-up" in sds, "and that no reload has run yet")

    # Consumer text holding markup is text: a target, trace id and interaction ID with tags.
    # (hyper refuses a raw `<` in a request target, so the target carries it percent-encoded.)
    driver.find_element(By.CSS_SELECTOR, "nav [data-tab=requests]").click()
    hostile = "<script>window.__pwned = 1</script>"
    send(hostile, path="/%3Cscript%3Ewindow.__pwned=2%3C/script%3E",
         headers={"Ssp-InteractionID": "<img src=x onerror=\"window.__pwned=3\">"})
    open_row(driver, wait, hostile)
    wait.until(ec.text_to_be_present_in_element((By.ID, "detail"), hostile))
    check(driver.execute_script("return window.__pwned === undefined"), "no consumer markup ran")
    check(not driver.find_elements(By.CSS_SELECTOR, "#rows script, #rows img, #detail script, #detail img"),
          "no element was made from consumer text")
    check("<img src=x" in wait_row(driver, wait, hostile), "the interaction ID shows as the text it was")


if __name__ == "__main__":
    main()
