#!/usr/bin/env python3
"""Counts ctest's JUnit reports test by test for deploy/test.sh's closing line.

Usage: junit_counts.py REPORT.xml...   prints "PASSED FAILED SKIPPED DISABLED"

The report's own totals cannot be used: ctest counts a test whose executable is missing as
"skipped" (status="notrun", "Unable to find executable") and a disabled test neither failed nor
skipped, so tests - failures - skipped would call it passed. Here, per <testcase>:
  status="run"                                      passed
  status="fail" or a <failure> element              failed
  status="notrun" with SKIP_RETURN_CODE (exit 77)   skipped (the test said its component is absent)
  any other "notrun" (missing executable, ...)      failed: the test was meant to run and did not
  status="disabled"                                 disabled: reported, never counted as passed
A report that is missing or unreadable counts nothing (test.sh counts that failure itself).
"""
import sys
import xml.etree.ElementTree as ET


def classify(case):
    status = case.get("status")
    if status == "fail" or case.find("failure") is not None:
        return "failed"
    if status == "run":
        return "passed"
    if status == "disabled":
        return "disabled"
    skipped = case.find("skipped")
    if status == "notrun" and skipped is not None and \
            skipped.get("message", "").startswith("SKIP_RETURN_CODE"):
        return "skipped"
    return "failed"


def testcases(paths):
    """Every <testcase> of the reports that exist and parse."""
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        yield from root.iter("testcase")


def main(paths):
    counts = {"passed": 0, "failed": 0, "skipped": 0, "disabled": 0}
    for case in testcases(paths):
        counts[classify(case)] += 1
    print(counts["passed"], counts["failed"], counts["skipped"], counts["disabled"])


if __name__ == "__main__":
    main(sys.argv[1:])
