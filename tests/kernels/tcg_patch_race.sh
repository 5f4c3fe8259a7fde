#!/usr/local/bin/busybox sh
# The /init of a reduction without BPF or the tracer (docs/development.md,
# "Why one host thread"): it turns the raw_syscalls trace events on and off
# (the kernel patches their call sites with int3 each time) while three
# untraced loops make syscalls, ROUNDS times (kernel command line; default
# 1000), then powers off. Booted with the busybox-static binary at
# /usr/local/bin/busybox, as the only file of an initramfs besides this one:
#
#   mkdir -p r/usr/local/bin && cp /bin/busybox r/usr/local/bin/ &&
#   cp tests/kernels/tcg_patch_race.sh r/init &&
#   (cd r && find . | cpio -o -H newc | gzip -1) > race.cpio.gz
#   qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -nographic \
#     -no-reboot -kernel VMLINUZ -initrd race.cpio.gz \
#     -append 'console=ttyS0 panic=-1 rdinit=/init'
#
# Sid's 7.2 under `-accel tcg` (multi-threaded) may say `Oops: int3` at a
# site whose bytes are already the patch's final ones (1 run in 2 here,
# at `ttwu_do_activate+0x8c`; with static C programs calling getppid in
# place of the loops, 6 in 6 within seconds); under `-accel
# tcg,thread=single` it prints "@@race done 1000".
bb=/usr/local/bin/busybox
$bb mkdir -p /proc /sys
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t tracefs tracefs /sys/kernel/tracing
echo "@@race $($bb uname -r), $($bb nproc) CPUs"
for i in 1 2 3; do
  $bb sh -c 'while :; do read -r x </proc/self/stat; done' &
done
events=/sys/kernel/tracing/events/raw_syscalls
n=0
while [ $n -lt "${ROUNDS:-1000}" ]; do
  echo 1 >$events/sys_enter/enable; echo 1 >$events/sys_exit/enable
  echo 0 >$events/sys_enter/enable; echo 0 >$events/sys_exit/enable
  n=$((n + 1))
done
echo "@@race done $n"
echo o >/proc/sysrq-trigger
$bb sleep 30
