#!/bin/bash
# Byte-for-byte comparison of two p2pkit trees' dissection output (issue 12: every speed change
# keeps the output).
#
#   bash benchmarks/compare_dissect_outputs.sh BEFORE_TREE AFTER_TREE [CAPTURE...]
#
# Runs `python -m p2pkit dissect` in summary, -V and --json mode with each tree (PYTHONPATH,
# from /tmp so that neither tree is picked up from the working directory) on every committed
# capture (tests/data/captures), the bundled sample and any CAPTURE given (e.g. those of
# benchmarks/mode_captures.py), compares standard output, standard error and the exit status,
# prints ALL IDENTICAL or each capture and mode that differs, and exits non-zero on a
# difference. PYTHON names the interpreter (default: python3).
set -u
before=$(realpath "$1"); after=$(realpath "$2"); shift 2
python=${PYTHON:-python3}
out=$(mktemp -d /tmp/compare-dissect.XXXXXX)
trap 'rm -rf "$out"' EXIT
captures=$(ls "$after"/tests/data/captures/*.pcap* "$after"/p2pkit/data/*.pcap* 2>/dev/null
           for c in "$@"; do realpath "$c"; done)
fail=0
for capture in $captures; do
  for mode in "" "-V" "--json"; do
    for side in before after; do
      tree=$before; [ "$side" = after ] && tree=$after
      (cd /tmp && PYTHONPATH=$tree timeout 600 "$python" -m p2pkit dissect "$capture" $mode \
         > "$out/$side.out" 2> "$out/$side.err"; echo "exit $?" >> "$out/$side.err")
    done
    if ! cmp -s "$out/before.out" "$out/after.out" || ! cmp -s "$out/before.err" "$out/after.err"; then
      echo "DIFFER: $capture ${mode:-summary}"; fail=1
    fi
  done
done
[ "$fail" = 0 ] && echo "ALL IDENTICAL ($(echo $captures | wc -w) captures x 3 modes)"
exit $fail
