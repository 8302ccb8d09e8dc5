#!/usr/bin/env python3
"""Prints, for every failed test in ctest's JUnit reports, its name and the lines of its output
that say why (Catch2's failed assertions with their expansions, sanitizer and script errors).

test.sh prints this right before its summary: the end of a CI log is what survives, and the
full --output-on-failure text sits far above it.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from junit_counts import classify, testcases  # noqa: E402  (one notion of "failed" for both)

# A line that starts the story of one failure, and how many lines after it belong to it.
START = re.compile(r"FAILED:|ERROR: AddressSanitizer|runtime error:|^\s*not ok|FAIL\b|"
                   r"due to unexpected exception|fatal error condition|Timeout")
MAX_LINES_PER_TEST = 40


def failure_lines(text):
    lines = text.splitlines()
    out, keep_until = [], -1
    for i, line in enumerate(lines):
        if START.search(line):
            # Catch prints the file:line of a failure two lines above "FAILED:".
            first = max(i - 2, keep_until + 1, 0)
            out.extend(lines[first:i])
            keep_until = i + 8
        if i <= keep_until:
            out.append(line)
    if not out:  # nothing recognisable: the end of the output is the best guess
        out = lines[-15:]
    return out[:MAX_LINES_PER_TEST]


def main(paths):
    failed = 0
    for case in testcases(paths):
        if classify(case) != "failed":
            continue
        failed += 1
        out = case.find("system-out")
        print(f"--- {case.get('name')}")
        for line in failure_lines(out.text if out is not None and out.text else ""):
            print(f"    {line[:300]}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    main(sys.argv[1:])
