#!/bin/sh
# Make sure Fashion-MNIST is where l4theory looks for it, before any long work starts.
#
# Looks where l4theory.convert.datasets looks: $L4THEORY_FASHION_MNIST if set (no fallback),
# else Debian's package folder. If the package is missing it installs
# `dataset-fashion-mnist` with apt-get when running as root, or with `sudo -n` when sudo
# needs no password; otherwise it stops with one line saying what to run. Nothing is
# downloaded from anywhere but the system's package manager.
set -eu

PKG=dataset-fashion-mnist
DIR=/usr/share/datasets/fashion-mnist
FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

has_files() {
    for f in $FILES; do
        if ! { test -f "$1/$f.gz" || test -f "$1/$f"; }; then
            return 1
        fi
    done
    return 0
}

if [ -n "${L4THEORY_FASHION_MNIST:-}" ]; then
    if has_files "$L4THEORY_FASHION_MNIST"; then
        exit 0
    fi
    echo "data: L4THEORY_FASHION_MNIST=$L4THEORY_FASHION_MNIST does not hold the four Fashion-MNIST IDX files ($FILES, optionally .gz); fix the folder or unset the variable to use Debian's $PKG" >&2
    exit 1
fi

if has_files "$DIR"; then
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "data: Fashion-MNIST is missing: run \`sudo apt-get install $PKG\` (Debian/Ubuntu), or set L4THEORY_FASHION_MNIST=/folder/with/the/four/idx/files, then rerun make" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "data: Fashion-MNIST is missing and this system has no apt-get: put the four IDX files ($FILES, optionally .gz) in a folder and set L4THEORY_FASHION_MNIST=/that/folder" >&2
    exit 1
fi

echo "data: installing Debian's $PKG (Fashion-MNIST, about 30 MB) with ${SUDO:-root} apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "$PKG" >/dev/null
if ! has_files "$DIR"; then
    echo "data: $PKG installed but $DIR does not hold the four IDX files" >&2
    exit 1
fi
