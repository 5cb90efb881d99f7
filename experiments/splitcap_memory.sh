#!/bin/bash
# peak host memory of mnist_10x12 in its first 120 s under different split caps (the GPU's cap emulated on the CPU)
for cap in 262144 65536 32768 16384; do
  s=$(date +%s.%N)
  LRENUM_SETTINGS="{\"split_children_cpu\": $cap}" /usr/bin/time -f "MAXRSS_KB=%M" timeout 120 python -m lrenum enumerate experiments/models/mnist_10x12.npz -q --json > /tmp/cap_$cap.out 2> /tmp/cap_$cap.err
  echo "cap=$cap rc=$? $(grep MAXRSS /tmp/cap_$cap.err) wall=$(echo "$(date +%s.%N) - $s" | bc)"
done
