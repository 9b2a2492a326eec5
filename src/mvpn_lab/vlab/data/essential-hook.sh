#!/bin/sh
# mmdebstrap essential hook: runs before the kernel is installed, so the
# initramfs carries only what the twin needs to mount its virtio root disk.
set -eu
root="$1"
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=zstd\n' > "$root/etc/initramfs-tools/conf.d/mvpn-twin.conf"
printf 'virtio_pci\nvirtio_blk\ncrc32c_generic\next4\n' > "$root/etc/initramfs-tools/modules"
# No documentation or translations in the image: smaller and faster to build.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
printf 'path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/locale/*\n' \
  > "$root/etc/dpkg/dpkg.cfg.d/mvpn-twin-nodoc"
