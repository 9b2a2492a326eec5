#!/bin/sh
# mmdebstrap customize hook: turns the bookworm root filesystem into the twin.
set -eu
root="$1"

echo mvpn-twin > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 mvpn-twin\n::1 localhost ip6-localhost\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 defaults,noatime 0 1\n' > "$root/etc/fstab"

# Management network: QEMU user networking on the virtio card, DHCP by systemd-networkd.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nDriver=virtio_net\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n' \
  > "$root/etc/systemd/network/10-mgmt.network"
chroot "$root" systemctl enable systemd-networkd.service
chroot "$root" systemctl mask systemd-networkd-wait-online.service

# SSH: root by key only; the key of each lab arrives on the kernel command
# line (mvpn.authkey=<base64 of the public key line>).
cat > "$root/etc/ssh/sshd_config.d/mvpn-twin.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 50:30:100
MaxSessions 50
CONF
cat > "$root/usr/local/sbin/mvpn-authkey" <<'SCRIPT'
#!/bin/sh
# Installs the lab's SSH public key from the kernel command line.
set -eu
for word in $(cat /proc/cmdline); do
  case "$word" in
    mvpn.authkey=*)
      install -d -m 700 /root/.ssh
      echo "${word#mvpn.authkey=}" | base64 -d > /root/.ssh/authorized_keys
      chmod 600 /root/.ssh/authorized_keys
      ;;
  esac
done
SCRIPT
chmod 755 "$root/usr/local/sbin/mvpn-authkey"
cat > "$root/etc/systemd/system/mvpn-authkey.service" <<'UNIT'
[Unit]
Description=Install the lab's SSH key from the kernel command line
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mvpn-authkey

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable mvpn-authkey.service

# Host keys are made for this image alone, never shared with another build.
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" ssh-keygen -A -q

# Lab daemons run as per-lab-host units that the roles install; the
# distribution's own instances stay off.
for unit in hostapd.service wpa_supplicant.service radvd.service apache2.service \
            apache-htcacheclean.service iperf3.service chrony.service; do
  chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done

# Journal in memory; no apt timers or daily jobs in a lab VM.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/mvpn-twin.conf"
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
printf 'mvpn-twin image\n' > "$root/etc/mvpn-twin-release"
rm -rf "$root"/var/cache/apt/archives/*.deb
