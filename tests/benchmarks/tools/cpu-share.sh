#!/bin/bash
# How much of the machine's CPU one benchmark case uses, split into user and system time: runs
# the case for 8 s and samples /proc/stat over 3 s in its middle (the whole machine, so run it
# with nothing else busy). doc/performance.md quotes it ("Where 4 KiB stands").
#   tests/benchmarks/tools/cpu-share.sh <ipmbqt_bench> <case> [size]
set -eu
bench=$1 case=$2 size=${3:-4096}
cpus=$(nproc)
out=$(mktemp)
"$bench" --only "^$case\$" --sizes "$size" --reps 1 --duration 8000 --output "$out.json" >"$out" 2>&1 &
pid=$!
sleep 4
read -r _ u1 n1 s1 i1 w1 q1 sq1 _ </proc/stat
sleep 3
read -r _ u2 n2 s2 i2 w2 q2 sq2 _ </proc/stat
wait $pid
user=$(( (u2 + n2) - (u1 + n1) ))
sys=$(( (s2 + q2 + sq2) - (s1 + q1 + sq1) ))
idle=$(( (i2 + w2) - (i1 + w1) ))
all=$(( user + sys + idle ))
rate=$(grep -o "$size [^,]*: [0-9.]*[kM]\? msgs/s\|: [0-9.]*[kM]\? msgs/s" "$out" | head -1 | sed 's/.*: //')
awk -v c="$case" -v r="$rate" -v u="$user" -v s="$sys" -v a="$all" -v n="$cpus" \
    'BEGIN { printf "%s: %s, CPUs busy %.2f (user %.2f, system %.2f of %d)\n", c, r, n*(u+s)/a, n*u/a, n*s/a, n }'
rm -f "$out" "$out.json"
