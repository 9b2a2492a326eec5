#!/bin/sh
# Cabling of the virtual twin, run inside the VM by 'mvpn-lab vlab up'.
# It builds what the physical lab has as cables and cards; it is idempotent.
#
#   backbone  fec0:106:2500::/64  bridge br-backbone: ha:eth0  cn:eth0  impair:eth0  fn:eth2
#   impaired  fec0:106:1700::/64  veth impair:eth1 <-> fn:eth0
#   radios    mac80211_hwsim      ha:wlan0 (AP LOCAL)  fn:wlan0 (AP VISITME)  mn:wlan0 (station)
#
# fn:eth2 is the foreign router's port on the backbone, used by the paper's
# Fig. 1 layout (no impairment node). Addresses and routes are the roles' job.
set -eu
HOSTS="mn ha fn cn impair"
RADIO_HOSTS="ha fn mn"

for mod in mac80211_hwsim esp6 ip6_tunnel xfrm6_tunnel xfrm_user sch_netem sch_tbf sch_htb mip6 \
           ip6table_filter veth bridge; do
  case "$mod" in
    mac80211_hwsim) lsmod | grep -q '^mac80211_hwsim ' || modprobe mac80211_hwsim radios=3 ;;
    *) modprobe "$mod" 2>/dev/null || true ;;
  esac
done

for ns in $HOSTS; do
  [ -e "/run/netns/$ns" ] || ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Python wrapper that Ansible uses as this lab host's interpreter.
  wrapper="/usr/local/bin/python3-$ns"
  if [ ! -x "$wrapper" ]; then
    printf '#!/bin/sh\nexec /usr/sbin/ip netns exec %s /usr/bin/python3 "$@"\n' "$ns" > "$wrapper"
    chmod 755 "$wrapper"
  fi
done

# Backbone bridge in the VM's own namespace; it carries no address.
if ! ip link show br-backbone >/dev/null 2>&1; then
  ip link add br-backbone type bridge
  echo 1 > /proc/sys/net/ipv6/conf/br-backbone/disable_ipv6
fi
ip link set br-backbone up
port() {  # port NS IFNAME: a veth from the bridge into NS, named IFNAME there
  peer="bb-$1"
  if ! ip link show "$peer" >/dev/null 2>&1; then
    ip link add "$peer" type veth peer name "$2" netns "$1"
    echo 1 > "/proc/sys/net/ipv6/conf/$peer/disable_ipv6"
  fi
  ip link set "$peer" master br-backbone up
}
port ha eth0
port cn eth0
port impair eth0
port fn eth2

# Impaired link: impair:eth1 <-> fn:eth0.
if ! ip -n impair link show eth1 >/dev/null 2>&1; then
  ip link add imp-tmp type veth peer name fn-tmp
  ip link set imp-tmp netns impair
  ip link set fn-tmp netns fn
  ip -n impair link set imp-tmp name eth1
  ip -n fn link set fn-tmp name eth0
fi

# One hwsim radio per wireless lab host, named wlan0 inside its namespace.
for ns in $RADIO_HOSTS; do
  if ip -n "$ns" link show wlan0 >/dev/null 2>&1; then
    continue
  fi
  dev=""
  for d in /sys/class/net/*; do
    [ -e "$d/phy80211" ] && { dev=$(basename "$d"); break; }
  done
  [ -n "$dev" ] || { echo "no free hwsim radio for $ns" >&2; exit 1; }
  phy=$(cat "/sys/class/net/$dev/phy80211/name")
  iw phy "$phy" set netns name "$ns"
  ip -n "$ns" link set "$dev" name wlan0
done

# Let hostapd, wpa_supplicant and radvd own the radios from here on.
rfkill unblock all 2>/dev/null || true
for ns in $HOSTS; do
  printf '%s:' "$ns"
  ip -n "$ns" -o link show | awk -F': ' '{printf " %s", $2}' | sed 's/@[^ ]*//g'
  echo
done
