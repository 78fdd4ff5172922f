#!/bin/sh
# An update that always fails, to see failure, retry and removal in action.
echo "checking package mirror..."
echo "PROGRESS 30"
echo "error: package mirror unreachable (this demo script always fails)" >&2
exit 3
