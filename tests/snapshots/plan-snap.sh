#!/usr/bin/env bash
set -e
# nslab plan target/test-recipes/plan-snap.rhai: lab plan-snap as `nslab run` builds it, for a fresh host; run as root
# params:
#   hosts = ["a", "b"]
#   subnet = 10.7.0.0/24  (--set)
# == switch
ip link add br7 type bridge
ip link set br7 up
ip addr add 10.7.0.1/24 dev br7
ip netns add a
ip link add v-a type veth peer name eth0 netns a
ip link set v-a master br7
ip link set v-a up
ip -n a link set eth0 up
ip -n a addr add 10.7.0.10/24 dev eth0
ip -n a addr add fd07::10/64 dev eth0 nodad
ip -n a route add default via 10.7.0.1
ip netns add b
ip link add v-b type veth peer name eth0 netns b
ip link set v-b master br7
ip link set v-b up
ip -n b link set eth0 up
ip -n b addr add 10.7.0.11/24 dev eth0
ip -n b addr add fd07::11/64 dev eth0 nodad
ip -n b route add default via 10.7.0.1
sysctl -qw net.ipv4.ip_forward=1
ip netns exec a sysctl -qw net.ipv4.conf.all.rp_filter=0
iptables -t nat -A POSTROUTING -s 10.7.0.0/24 ! -d 10.7.0.0/24 -o uplink -m comment --comment nslab:plan-snap -j MASQUERADE
iptables -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:plan-snap -j DNAT --to-destination 10.7.0.10:80
iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:plan-snap -j DNAT --to-destination 10.7.0.10:80
# == checks
ip netns exec a ping -c1 -w3 10.7.0.11 || echo 'ping failed (nslab run goes on: only an assert of its result stops it)' >&2
ip netns exec a ping -c2 -W2 10.7.0.1 || echo 'ping failed (nslab run goes on: only an assert of its result stops it)' >&2
# probe::serve: nslab's built-in server listens on tcp port 80 in netns b and tells each client the address it saw (no standard command does this)
# probe::tcp: connect to 10.7.0.11:80 and read the reply (needs a server there): ip netns exec a timeout 2 bash -c 'cat </dev/tcp/10.7.0.11/80'
ip netns exec a ip -br addr
ip link del v-b
