#!/usr/bin/env sh
# Builds the libzmq baseline for `syncpub bench --libzmq DIR` into DIR
# (default: this folder). Needs a C compiler and libzmq's headers
# (Debian: apt-get install libzmq3-dev). Not part of the Go build or tests.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
cc -O2 -Wall -o "$out/zsyncpub" "$here/zsyncpub.c" -lzmq
cc -O2 -Wall -o "$out/zsyncsub" "$here/zsyncsub.c" -lzmq
echo "built $out/zsyncpub and $out/zsyncsub"
