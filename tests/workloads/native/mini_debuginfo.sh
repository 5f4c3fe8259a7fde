#!/bin/sh
# Strips the ELF file IN into OUT with a MiniDebugInfo section, as Fedora,
# RHEL and CentOS ship their binaries (the recipe of gdb's manual,
# "MiniDebugInfo"): the function symbols .dynsym lacks (static ones) kept
# in the .symtab of an ELF file, xz-compressed into .gnu_debugdata.
# Needs binutils (nm, objcopy, strip) and xz-utils.
# Usage: mini_debuginfo.sh IN OUT
set -eu
in=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -D "$in" --format=posix --defined-only | awk '{ print $1 }' | sort > "$work/dynsyms"
nm "$in" --format=posix --defined-only \
    | awk '{ if ($2 == "T" || $2 == "t" || $2 == "D") print $1 }' | sort > "$work/funcsyms"
comm -13 "$work/dynsyms" "$work/funcsyms" > "$work/keep_symbols"
objcopy --only-keep-debug "$in" "$work/debug"
objcopy -S --remove-section .gdb_index --remove-section .comment \
    --keep-symbols="$work/keep_symbols" "$work/debug" "$work/mini_debuginfo"
strip --strip-all -R .comment -o "$out" "$in"
xz "$work/mini_debuginfo"
objcopy --add-section .gnu_debugdata="$work/mini_debuginfo.xz" "$out"
