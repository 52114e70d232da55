#!/usr/bin/env python3
"""Writes the crafted capture fixtures: packets built byte by byte, never sent.

    capture-fixtures/make-crafted.py OUTDIR

Why crafted: the machine the fixtures were made on runs a kernel without tunnel, VLAN or
MPLS support (`ip link add ... type vxlan|geneve|gre|gretap|ipip|sit|ip6gre|ip6tnl|vlan`
all answer "Unknown device type"; there is no /proc/sys/net/mpls; no modules to load), so
no encapsulation could be recorded from real kernel devices, and IP fragments of TCP are
not something a Linux sender makes (it sets DF and segments by MSS). Every header is
written here field by field after its RFC, with correct IP, UDP and TCP checksums, so
tshark decodes each file without complaint (docs/fixtures.md says how they were checked).

Addresses: only documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32). Output is deterministic: fixed timestamps, ports and sequence numbers.

Files (see capture-fixtures/README.md):
  crafted-encap.pcap      one open (80) and one closed (81) port per encapsulation, each
                          encapsulation its own target address, plus frames that cannot
                          be decoded (counted by kind) and one nested too deep
  crafted-fragments.pcap  a SYN/ACK in a first IP fragment, a RST split inside its TCP
                          header, later fragments, an IPv6 first fragment
  crafted-icmp-udp.pcap   ICMP errors about UDP datagrams among a TCP exchange: silent
  crafted-order.pcap      answers stored before their SYN (a multi-queue NIC, a merge of
                          two captures): matched by 4-tuple and sequence numbers
  crafted-one-sided.pcap  only the client's direction captured: its ACK of the server's
                          ISN and its data prove the handshake completed
"""

import struct
import sys
from pathlib import Path

BASE_TS = 1_700_000_000  # 2023-11-14 22:13:20 UTC
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
CLIENT4 = bytes([198, 51, 100, 1])
CLIENT6 = bytes.fromhex("20010db8000100000000000000000001")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src: bytes, dst: bytes, proto: int, payload: bytes, ttl=64, ident=0, frag=0,
        total=None, tos=0) -> bytes:
    """IPv4 header (RFC 791) with checksum; `frag` is flags<<13 | offset."""
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, frag, ttl, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ip6(src: bytes, dst: bytes, nh: int, payload: bytes, hlim=64, flow=0) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28 | flow, len(payload), nh, hlim, src, dst) + payload


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


SYN_OPTS = bytes.fromhex("020405b4") + bytes.fromhex("0402") + b"\x08\x0a" + \
    struct.pack("!II", 1000, 0) + bytes.fromhex("01030307")
SYNACK_OPTS = bytes.fromhex("020405b4") + bytes.fromhex("0402") + b"\x08\x0a" + \
    struct.pack("!II", 2000, 1000) + bytes.fromhex("01030307")

FIN, SYN, RST, PSH, ACK, ECE, CWR = 1, 2, 4, 8, 16, 64, 128


def tcp(src: bytes, dst: bytes, sport: int, dport: int, flags: int, seq: int, ack=0,
        opts=b"", win=64240, payload=b"", ae=False) -> bytes:
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4 | int(ae), flags, win, 0, 0)
    seg = h + opts + payload
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    c = csum(pseudo(src, dst, 17, 8 + len(payload)) + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


def icmp4(t: int, code: int, body: bytes) -> bytes:
    m = struct.pack("!BBHI", t, code, 0, 0) + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def eth(ethertype: int, payload: bytes, dst=MAC_B, src=MAC_A) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


class Pcap:
    """Legacy pcap, microseconds, little-endian, LINKTYPE_ETHERNET."""

    def __init__(self, snaplen=262144):
        self.records = []
        self.snaplen = snaplen

    def add(self, usec: int, frame: bytes, caplen=None):
        data = frame if caplen is None else frame[:caplen]
        self.records.append((usec, data, len(frame)))

    def write(self, path: Path):
        out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, 1)
        for usec, data, orig in self.records:
            out += struct.pack("<IIII", BASE_TS + usec // 1_000_000, usec % 1_000_000,
                               len(data), orig) + data
        path.write_bytes(out)


# ------------------------------------------------------------------------------------
# Inner exchanges: an open port (SYN, SYN/ACK, ACK) and a closed one (SYN, RST/ACK), as
# IP packets, so that each encapsulation can wrap them.

def exchange_v4(server: bytes, sport: int):
    c, s = CLIENT4, server
    return [
        ip4(c, s, 6, tcp(c, s, sport, 80, SYN, 1000, opts=SYN_OPTS), ident=1),
        ip4(s, c, 6, tcp(s, c, 80, sport, SYN | ACK, 5000, 1001, opts=SYNACK_OPTS), ttl=61),
        ip4(c, s, 6, tcp(c, s, sport, 80, ACK, 1001, 5001), ident=2),
        ip4(c, s, 6, tcp(c, s, sport + 1, 81, SYN, 3000, opts=SYN_OPTS), ident=3),
        ip4(s, c, 6, tcp(s, c, 81, sport + 1, RST | ACK, 0, 3001, win=0), ttl=61),
    ]


def exchange_v6(server: bytes, sport: int, client=CLIENT6):
    c, s = client, server
    return [
        ip6(c, s, 6, tcp(c, s, sport, 80, SYN, 1000, opts=SYN_OPTS), flow=0x1111),
        ip6(s, c, 6, tcp(s, c, 80, sport, SYN | ACK, 5000, 1001, opts=SYNACK_OPTS), hlim=61,
            flow=0x2222),
        ip6(c, s, 6, tcp(c, s, sport, 80, ACK, 1001, 5001), flow=0x1111),
        ip6(c, s, 6, tcp(c, s, sport + 1, 81, SYN, 3000, opts=SYN_OPTS), flow=0x3333),
        ip6(s, c, 6, tcp(s, c, 81, sport + 1, RST | ACK, 0, 3001, win=0), hlim=61,
            flow=0x4444),
    ]


# Outer (tunnel endpoint) addresses.
T4A, T4B = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
T6A = bytes.fromhex("20010db800ff00000000000000000001")
T6B = bytes.fromhex("20010db800ff00000000000000000002")


def outer4(proto: int, payload: bytes, out: bool) -> bytes:
    a, b = (T4A, T4B) if out else (T4B, T4A)
    return ip4(a, b, proto, payload)


def outer6(nh: int, payload: bytes, out: bool) -> bytes:
    a, b = (T6A, T6B) if out else (T6B, T6A)
    return ip6(a, b, nh, payload)


def outer_udp4(sport: int, dport: int, payload: bytes, out: bool) -> bytes:
    a, b = (T4A, T4B) if out else (T4B, T4A)
    return ip4(a, b, 17, udp(a, b, sport, dport, payload))


def is_out(ip: bytes) -> bool:
    """Client-to-server packets go 'out' through the tunnel (A to B)."""
    if ip[0] >> 4 == 4:
        return ip[12:16] == CLIENT4
    return ip[8:24] in (CLIENT6, TEREDO_CLIENT)


def gre(proto: int, payload: bytes, key=None, seq=None) -> bytes:
    flags = (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h + payload


def mpls(labels, payload: bytes) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        bos = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", label << 12 | bos << 8 | 64)
    return out + payload


def pppoe(payload: bytes, proto: int) -> bytes:
    return struct.pack("!BBHHH", 0x11, 0x00, 0x1234, len(payload) + 2, proto) + payload


def erspan2(frame: bytes) -> bytes:
    # Version 1, VLAN 0, COS 0, En 0, T 0, session 42; reserved, index 0.
    return struct.pack("!HHI", 1 << 12, 42, 0) + frame


def erspan3(frame: bytes) -> bytes:
    # Version 2, VLAN 0; COS, BSO, T, session 42; timestamp; SGT, P, FT, HW ID, D, Gra, O=0.
    return struct.pack("!HHIHH", 2 << 12, 42, 123456, 0, 0) + frame


def vxlan(frame: bytes, vni=42) -> bytes:
    return struct.pack("!BxxxI", 0x08, vni << 8) + frame


def geneve(proto: int, payload: bytes, vni=42) -> bytes:
    # One 8-byte option (class 0x0102, type 0x80, length 1 word).
    opt = struct.pack("!HBBI", 0x0102, 0x80, 1, 0xDEADBEEF)
    return struct.pack("!BBHI", len(opt) // 4, 0, proto, vni << 8) + opt + payload


def gtpu(ip: bytes, teid=0x1001, ext=False) -> bytes:
    if not ext:
        return struct.pack("!BBHI", 0x30, 0xFF, len(ip), teid) + ip
    # E flag: sequence number, N-PDU number, next extension 0x85 (PDU session container,
    # 1 word: length 1, PDU type 0 / QFI 9, next extension 0).
    rest = struct.pack("!HBB", 0, 0, 0x85) + bytes([1, 0x00, 0x09, 0x00]) + ip
    return struct.pack("!BBHI", 0x34, 0xFF, len(rest), teid) + rest


TEREDO_CLIENT = bytes.fromhex("20010db8000300000000000000000001")


def teredo(ip6pkt: bytes) -> bytes:
    # Origin indication (RFC 4380 §5.1.1): type 0, obfuscated port and address.
    origin = struct.pack("!HH4s", 0x0000, 0xFFFF ^ 40000, bytes(b ^ 0xFF for b in T4A))
    return origin + ip6pkt


def crafted_encap(out: Path):
    p = Pcap()
    t = 0

    def add(frame: bytes, step=1000):
        nonlocal t
        t += step
        p.add(t, frame)

    srv = lambda i: bytes([203, 0, 113, 10 + i])  # noqa: E731
    srv6 = lambda i: bytes.fromhex(f"20010db800cb007100000000000000{10 + i:02x}")  # noqa: E731

    cases = [
        # (index, name, builder(ip, out) -> Ethernet frame, v6 inner)
        (1, "802.1ad + 802.1Q", lambda ip, o: eth(0x88A8, struct.pack("!HH", 100, 0x8100)
                                                  + struct.pack("!HH", 10, 0x0800 if ip[0] >> 4 == 4 else 0x86DD) + ip), False),
        (2, "MPLS, two labels", lambda ip, o: eth(0x8847, mpls([1000, 2000], ip)), False),
        (3, "802.1ah PBB", lambda ip, o: eth(0x88A8, struct.pack("!HH", 200, 0x88E7)
                                            + struct.pack("!I", 0x00012345)
                                            + eth(0x0800, ip, bytes.fromhex("0200000000c2"), bytes.fromhex("0200000000c1"))), False),
        (4, "PPPoE session", lambda ip, o: eth(0x8864, pppoe(ip, 0x0021)), False),
        (5, "IP-in-IP", lambda ip, o: eth(0x0800, outer4(4, ip, o)), False),
        (6, "GRE with key", lambda ip, o: eth(0x0800, outer4(47, gre(0x0800, ip, key=7), o)), False),
        (7, "GRE transparent Ethernet bridging (gretap)",
         lambda ip, o: eth(0x0800, outer4(47, gre(0x6558, eth(0x0800, ip)), o)), False),
        (8, "ERSPAN type II", lambda ip, o: eth(0x0800, outer4(47, gre(0x88BE, erspan2(eth(0x0800, ip)), seq=1), o)), False),
        (9, "ERSPAN type III", lambda ip, o: eth(0x0800, outer4(47, gre(0x22EB, erspan3(eth(0x0800, ip)), seq=1), o)), False),
        (10, "VXLAN", lambda ip, o: eth(0x0800, outer_udp4(49152 + len(ip), 4789, vxlan(eth(0x0800, ip)), o)), False),
        (11, "Geneve", lambda ip, o: eth(0x0800, outer_udp4(49153, 6081, geneve(0x6558, eth(0x0800, ip)), o)), False),
        (12, "GTP-U", lambda ip, o: eth(0x0800, outer_udp4(2152, 2152, gtpu(ip, ext=not o), o)), False),
        (13, "GRE-in-UDP", lambda ip, o: eth(0x0800, outer_udp4(49154, 4754, gre(0x0800, ip), o)), False),
        (14, "6in4", lambda ip, o: eth(0x0800, outer4(41, ip, o)), True),
        (15, "4in6", lambda ip, o: eth(0x86DD, outer6(4, ip, o)), False),
        (16, "IPv6 in GRE over IPv6 (ip6gre)", lambda ip, o: eth(0x86DD, outer6(47, gre(0x86DD, ip), o)), True),
        (17, "Teredo", None, True),
    ]

    for i, _name, build, v6 in cases:
        if i == 17:
            c = TEREDO_CLIENT
            for ip in exchange_v6(srv6(i), 41000 + 10 * i, client=c):
                o = is_out(ip)
                # Client to relay: to the relay's 3544; relay to client: from 3544.
                u = outer_udp4(40000, 3544, teredo(ip), o) if o else outer_udp4(3544, 40000, ip, o)
                add(eth(0x0800, u))
            t += 100_000
            continue
        pkts = exchange_v6(srv6(i), 41000 + 10 * i) if v6 else exchange_v4(srv(i), 41000 + 10 * i)
        for ip in pkts:
            add(build(ip, is_out(ip)))
        t += 100_000

    # Frames that cannot be decoded, one of each kind, counted in the replay's warnings.
    junk_ip = exchange_v4(srv(30), 42000)[0]
    add(eth(0x0800, outer_udp4(49155, 4789, b"\x08\x00\x00", True)))          # VXLAN cut
    add(eth(0x0800, outer4(47, struct.pack("!HH", 0x2001, 0x880B) + b"\0" * 8, True)))  # GRE v1
    add(eth(0x0800, outer_udp4(2152, 2152, gtpu(b"\x00" * 40), True)))       # GTP-U, no IP
    add(eth(0x8847, struct.pack("!I", 1000 << 12 | 64)))                       # MPLS, no BoS
    add(eth(0x8864, struct.pack("!BBHHH", 0x12, 0, 1, 2, 0x0021)))             # PPPoE v2
    deep = junk_ip
    for _ in range(9):
        deep = outer4(47, gre(0x0800, deep), True)
    add(eth(0x0800, deep))                                                     # 9 x GRE
    # Not TCP, silently ignored: PPP LCP inside PPPoE, plain UDP, ARP over VXLAN.
    add(eth(0x8864, pppoe(bytes.fromhex("01010004"), 0xC021)))
    add(eth(0x0800, outer_udp4(5353, 5353, b"\0" * 12, True)))
    add(eth(0x0800, outer_udp4(49156, 4789, vxlan(eth(0x0806, b"\0" * 28)), True)))
    p.write(out / "crafted-encap.pcap")


def crafted_fragments(out: Path):
    p = Pcap()
    t = 0

    def add(frame: bytes, step=1000):
        nonlocal t
        t += step
        p.add(t, eth(0x0800, frame) if frame[0] >> 4 == 4 else eth(0x86DD, frame))

    c, s = CLIENT4, bytes([203, 0, 113, 50])
    mf = 0x2000
    # Port 80: the SYN/ACK travels in two fragments; the first holds the whole TCP
    # header (with its options) and decides the port.
    add(ip4(c, s, 6, tcp(c, s, 43000, 80, SYN, 1000, opts=SYN_OPTS), ident=10))
    synack = tcp(s, c, 80, 43000, SYN | ACK, 5000, 1001, opts=SYNACK_OPTS, payload=b"\0" * 24)
    add(ip4(s, c, 6, synack[:48], ident=0x51, frag=mf | 0, ttl=61, total=20 + 48))
    add(ip4(s, c, 6, synack[48:], ident=0x51, frag=48 // 8, ttl=61, total=20 + len(synack) - 48))
    add(ip4(c, s, 6, tcp(c, s, 43000, 80, ACK, 1001, 5001), ident=11))
    t += 100_000
    # Port 81: the RST/ACK's first fragment holds only 8 bytes of its TCP header (RFC 1858's
    # tiny fragment): not reassembled, so the port stays unanswered, with a warning.
    add(ip4(c, s, 6, tcp(c, s, 43001, 81, SYN, 3000, opts=SYN_OPTS), ident=12))
    rst = tcp(s, c, 81, 43001, RST | ACK, 0, 3001, win=0)
    add(ip4(s, c, 6, rst[:8], ident=0x52, frag=mf | 0, ttl=61, total=28))
    add(ip4(s, c, 6, rst[8:], ident=0x52, frag=1, ttl=61, total=20 + 12))
    t += 100_000
    # Port 82 over IPv6: the SYN/ACK in a first fragment (fragment header, M set).
    c6, s6 = CLIENT6, bytes.fromhex("20010db800cb00710000000000000050")
    add(ip6(c6, s6, 6, tcp(c6, s6, 43002, 82, SYN, 7000, opts=SYN_OPTS)))
    sa6 = tcp(s6, c6, 82, 43002, SYN | ACK, 9000, 7001, opts=SYNACK_OPTS, payload=b"\0" * 24)
    add(ip6(s6, c6, 44, struct.pack("!BBHI", 6, 0, 0 | 1, 0x77) + sa6[:48], hlim=61))
    add(ip6(s6, c6, 44, struct.pack("!BBHI", 6, 0, 48 | 0, 0x77) + sa6[48:], hlim=61))
    t += 100_000
    # Later fragments of UDP and ICMP datagrams: not TCP, silent.
    add(ip4(c, s, 17, b"\0" * 16, ident=0x60, frag=185))
    add(ip4(s, c, 1, b"\0" * 16, ident=0x61, frag=185))
    p.write(out / "crafted-fragments.pcap")


def crafted_icmp_udp(out: Path):
    p = Pcap()
    t = 0

    def add(frame: bytes, step=1000):
        nonlocal t
        t += step
        p.add(t, eth(0x0800, frame))

    c, s, r = CLIENT4, bytes([203, 0, 113, 60]), bytes([203, 0, 113, 254])
    # A DNS query to a closed UDP port, answered by ICMP port unreachable (and one
    # time-exceeded from a router): errors about UDP, none of synack's business.
    q = ip4(c, s, 17, udp(c, s, 53000, 53, b"\x12\x34\x01\x00\x00\x01" + b"\0" * 6), ident=20)
    add(q)
    add(ip4(s, c, 1, icmp4(3, 3, q[:28]), tos=0xC0))
    add(ip4(r, c, 1, icmp4(11, 0, q[:28]), tos=0xC0, ttl=254))
    # Meanwhile a TCP exchange: port 443 open, port 444 refused by ICMP admin-prohibited
    # quoting the SYN (this one is about TCP and decides the port).
    add(ip4(c, s, 6, tcp(c, s, 44000, 443, SYN, 1000, opts=SYN_OPTS), ident=21))
    add(ip4(s, c, 6, tcp(s, c, 443, 44000, SYN | ACK, 5000, 1001, opts=SYNACK_OPTS), ttl=61))
    add(ip4(c, s, 6, tcp(c, s, 44000, 443, ACK, 1001, 5001), ident=22))
    syn = ip4(c, s, 6, tcp(c, s, 44001, 444, SYN, 3000, opts=SYN_OPTS), ident=23)
    add(syn)
    add(ip4(s, c, 1, icmp4(3, 13, syn[:28]), tos=0xC0, ttl=61))
    p.write(out / "crafted-icmp-udp.pcap")


def crafted_order(out: Path):
    """Capture order is not wire order. Timestamps are given per packet, records are
    stored in the order listed."""
    p = Pcap()
    c, s = CLIENT4, bytes([203, 0, 113, 70])

    def add(usec: int, frame: bytes):
        p.add(usec, eth(0x0800, frame))

    # Port 80, a multi-queue NIC: the SYN/ACK (queue 1) is stored before the SYN (queue 0),
    # with its true, later timestamp; then the client's ACK and a request.
    add(1_040, ip4(s, c, 6, tcp(s, c, 80, 45000, SYN | ACK, 7000, 1001, opts=SYNACK_OPTS), ttl=61))
    add(1_000, ip4(c, s, 6, tcp(c, s, 45000, 80, SYN, 1000, opts=SYN_OPTS), ident=30))
    add(1_100, ip4(c, s, 6, tcp(c, s, 45000, 80, ACK, 1001, 7001), ident=31))
    add(1_200, ip4(c, s, 6, tcp(c, s, 45000, 80, PSH | ACK, 1001, 7001, payload=b"GET / HTTP/1.0\r\n\r\n"), ident=32))
    add(1_300, ip4(s, c, 6, tcp(s, c, 80, 45000, ACK, 7001, 1019), ttl=61))
    # Port 81, two captures merged with a clock 2 ms apart: the RST/ACK is stored (and
    # stamped) before the SYN it answers.
    add(98_000, ip4(s, c, 6, tcp(s, c, 81, 45001, RST | ACK, 0, 3001, win=0), ttl=61))
    add(100_000, ip4(c, s, 6, tcp(c, s, 45001, 81, SYN, 3000, opts=SYN_OPTS), ident=33))
    # Port 82: a SYN/ACK stored before a SYN it does not acknowledge (ack 5556, the SYN's
    # ISN is 5000): not its answer, so the port stays unanswered.
    add(200_000, ip4(s, c, 6, tcp(s, c, 82, 45002, SYN | ACK, 9000, 5556, opts=SYNACK_OPTS), ttl=61))
    add(200_100, ip4(c, s, 6, tcp(c, s, 45002, 82, SYN, 5000, opts=SYN_OPTS), ident=34))
    # Port 83: a SYN/ACK stored 1 s before its SYN is held no longer than 300 ms.
    add(300_000, ip4(s, c, 6, tcp(s, c, 83, 45003, SYN | ACK, 9100, 6001, opts=SYNACK_OPTS), ttl=61))
    add(1_300_000, ip4(c, s, 6, tcp(c, s, 45003, 83, SYN, 6000, opts=SYN_OPTS), ident=35))
    p.write(out / "crafted-order.pcap")


def crafted_one_sided(out: Path):
    """A capture of the client's direction only (a mirror of one direction, asymmetric
    routing): no packet from the servers."""
    p = Pcap()
    c, s = CLIENT4, bytes([203, 0, 113, 80])

    def add(usec: int, frame: bytes):
        p.add(usec, eth(0x0800, frame))

    # Port 443: an AccECN SYN (AE, CWR, ECE set: RFC 9768 §3.1.1), then the client
    # acknowledges the server's ISN 70000 (ack 70001), sends a request and closes.
    add(1_000, ip4(c, s, 6, tcp(c, s, 46000, 443, SYN | ECE | CWR, 1000, opts=SYN_OPTS, ae=True), ident=40))
    add(2_000, ip4(c, s, 6, tcp(c, s, 46000, 443, ACK, 1001, 70001), ident=41))
    add(2_100, ip4(c, s, 6, tcp(c, s, 46000, 443, PSH | ACK, 1001, 70001, payload=b"\x16\x03\x01" + b"\0" * 97), ident=42))
    add(9_000, ip4(c, s, 6, tcp(c, s, 46000, 443, FIN | ACK, 1101, 70500), ident=43))
    # Port 80: the ACK of the handshake, then the client resets (what synack's own scan
    # does, SO_LINGER 0): open as well.
    add(100_000, ip4(c, s, 6, tcp(c, s, 46001, 80, SYN, 2000, opts=SYN_OPTS), ident=44))
    add(100_900, ip4(c, s, 6, tcp(c, s, 46001, 80, ACK, 2001, 80001), ident=45))
    add(101_000, ip4(c, s, 6, tcp(c, s, 46001, 80, RST | ACK, 2001, 80001, win=0), ident=46))
    # Port 81: a SYN and its retransmission, nothing else: the packets prove nothing more.
    add(200_000, ip4(c, s, 6, tcp(c, s, 46002, 81, SYN, 3000, opts=SYN_OPTS), ident=47))
    add(1_200_000, ip4(c, s, 6, tcp(c, s, 46002, 81, SYN, 3000, opts=SYN_OPTS), ident=48))
    p.write(out / "crafted-one-sided.pcap")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-crafted.py OUTDIR")
    out = Path(sys.argv[1])
    crafted_encap(out)
    crafted_fragments(out)
    crafted_icmp_udp(out)
    crafted_order(out)
    crafted_one_sided(out)


if __name__ == "__main__":
    main()
