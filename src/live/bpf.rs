//! The classic BPF program attached to the capture socket.
//!
//! Filtering in the kernel keeps the capture cheap: only TCP to or from the targets and
//! ICMP/ICMPv6 (whose errors may come from any hop) reach user space. Loads are relative
//! to the network header (SKF_NET_OFF), so one program serves every link type. On `lo`
//! each packet passes the tap twice, once outgoing and once incoming; the program drops
//! the outgoing copy (SKF_AD_PKTTYPE), which pnet cannot see since it discards the
//! packet type.

use std::net::IpAddr;

use libc::{SKF_AD_OFF, SKF_AD_PKTTYPE, SKF_AD_PROTOCOL, SKF_NET_OFF};

/// One classic BPF instruction: libc's `struct sock_filter`, so the program goes to
/// SO_ATTACH_FILTER as built.
pub type Insn = libc::sock_filter;

// Opcodes from libc's linux/bpf_common.h constants (declared there as u32; the `code`
// field of sock_filter is 16 bits wide).
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The packet type of a packet this host sends (linux/if_packet.h).
const PACKET_OUTGOING: u32 = libc::PACKET_OUTGOING as u32;

/// Snap length: whole packets (the kernel caps at the frame size anyway).
const ACCEPT: u32 = 0x40000;

/// Per-family limits on address comparisons; beyond them the program keeps all TCP and
/// user space does the filtering (jump offsets are 8 bits).
pub const MAX_V4_TARGETS: usize = 32;
pub const MAX_V6_TARGETS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Accept,
    Drop,
    V4,
    V4Tcp,
    V6,
    V6Tcp,
    /// The next instruction.
    Next,
    /// Skip this many instructions after the next one.
    Skip(u8),
}

/// An instruction whose jump targets are still labels.
#[derive(Clone, Copy, Debug)]
enum Op {
    Ld(u16, i32),
    Jeq(u32, Label, Label),
    Ret(u32),
    Mark(Label),
}

fn ld_abs_b(off: i32) -> Op {
    Op::Ld(LD_B_ABS, off)
}
fn ld_abs_w(off: i32) -> Op {
    Op::Ld(LD_W_ABS, off)
}

/// Builds the filter for one interface.
pub fn program(loopback: bool, targets: &[IpAddr]) -> Vec<Insn> {
    let v4: Vec<[u8; 4]> = targets
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(a.octets()),
            _ => None,
        })
        .collect();
    let v6: Vec<[u8; 16]> = targets
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(a.octets()),
            _ => None,
        })
        .collect();
    let mut ops = Vec::new();
    if loopback {
        ops.push(ld_abs_w(SKF_AD_OFF + SKF_AD_PKTTYPE));
        ops.push(Op::Jeq(PACKET_OUTGOING, Label::Drop, Label::Next));
    }
    ops.push(ld_abs_w(SKF_AD_OFF + SKF_AD_PROTOCOL));
    ops.push(Op::Jeq(0x0800, Label::V4, Label::Next));
    ops.push(Op::Jeq(0x86dd, Label::V6, Label::Drop));

    ops.push(Op::Mark(Label::V4));
    ops.push(ld_abs_b(SKF_NET_OFF + 9));
    ops.push(Op::Jeq(6, Label::V4Tcp, Label::Next));
    ops.push(Op::Jeq(1, Label::Accept, Label::Drop));
    ops.push(Op::Mark(Label::V4Tcp));
    if v4.is_empty() || v4.len() > MAX_V4_TARGETS {
        ops.push(Op::Ret(if v4.is_empty() { 0 } else { ACCEPT }));
    } else {
        for off in [12, 16] {
            ops.push(ld_abs_w(SKF_NET_OFF + off));
            for a in &v4 {
                ops.push(Op::Jeq(u32::from_be_bytes(*a), Label::Accept, Label::Next));
            }
        }
        ops.push(Op::Ret(0));
    }

    ops.push(Op::Mark(Label::V6));
    ops.push(ld_abs_b(SKF_NET_OFF + 6));
    ops.push(Op::Jeq(6, Label::V6Tcp, Label::Next));
    ops.push(Op::Jeq(58, Label::Accept, Label::Drop));
    ops.push(Op::Mark(Label::V6Tcp));
    if v6.is_empty() || v6.len() > MAX_V6_TARGETS {
        ops.push(Op::Ret(if v6.is_empty() { 0 } else { ACCEPT }));
    } else {
        for base in [8, 24] {
            for a in &v6 {
                // Four 32-bit words must all match; a mismatch skips to the next address.
                for w in 0..4 {
                    let word =
                        u32::from_be_bytes([a[4 * w], a[4 * w + 1], a[4 * w + 2], a[4 * w + 3]]);
                    ops.push(ld_abs_w(SKF_NET_OFF + base + 4 * w as i32));
                    let on_match = if w == 3 { Label::Accept } else { Label::Next };
                    // A mismatch skips the remaining load/compare pairs of this address.
                    let on_mismatch = Label::Skip(2 * (3 - w) as u8);
                    ops.push(Op::Jeq(word, on_match, on_mismatch));
                }
            }
        }
        ops.push(Op::Ret(0));
    }
    ops.push(Op::Mark(Label::Accept));
    ops.push(Op::Ret(ACCEPT));
    ops.push(Op::Mark(Label::Drop));
    ops.push(Op::Ret(0));
    assemble(&ops)
}

/// Resolves labels to relative jump offsets.
fn assemble(ops: &[Op]) -> Vec<Insn> {
    // Position of each real instruction.
    let mut pos = Vec::with_capacity(ops.len());
    let mut n = 0usize;
    for op in ops {
        pos.push(n);
        if !matches!(op, Op::Mark(_)) {
            n += 1;
        }
    }
    let find = |label: Label| -> usize {
        ops.iter()
            .position(|o| matches!(o, Op::Mark(l) if *l == label))
            .map(|i| pos[i])
            .expect("label defined")
    };
    let mut out = Vec::with_capacity(n);
    for (i, op) in ops.iter().enumerate() {
        let here = pos[i];
        let insn = match *op {
            Op::Mark(_) => continue,
            Op::Ret(k) => Insn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k,
            },
            Op::Ld(code, off) => Insn {
                code,
                jt: 0,
                jf: 0,
                k: off as u32,
            },
            Op::Jeq(k, t, f) => {
                let rel = |label: Label| -> u8 {
                    match label {
                        Label::Next => 0,
                        Label::Skip(n) => n,
                        other => u8::try_from(find(other) - here - 1).expect("jump fits in 8 bits"),
                    }
                };
                Insn {
                    code: JEQ_K,
                    jt: rel(t),
                    jf: rel(f),
                    k,
                }
            }
        };
        out.push(insn);
    }
    out
}

/// Runs a program over a packet the way the kernel would, for the tests. `net` is the
/// network header offset in `pkt`, `proto` the EtherType and `pkttype` the packet type.
#[cfg(test)]
pub fn run(prog: &[Insn], pkt: &[u8], net: usize, proto: u16, pkttype: u32) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = prog[pc];
        pc += 1;
        match insn.code {
            RET_K => return insn.k,
            LD_W_ABS | LD_B_ABS => {
                let k = insn.k as i32;
                a = if k == SKF_AD_OFF + SKF_AD_PROTOCOL {
                    proto as u32
                } else if k == SKF_AD_OFF + SKF_AD_PKTTYPE {
                    pkttype
                } else {
                    let off = net + (k - SKF_NET_OFF) as usize;
                    let size = if insn.code == LD_B_ABS { 1 } else { 4 };
                    match pkt.get(off..off + size) {
                        Some(b) if size == 1 => b[0] as u32,
                        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                        None => return 0,
                    }
                };
            }
            JEQ_K => {
                pc += if a == insn.k { insn.jt } else { insn.jf } as usize;
            }
            _ => panic!("unexpected opcode {:#x}", insn.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack_core::decode::TcpFlags;
    use synack_core::testpkt::*;

    fn verdict(prog: &[Insn], eth: &[u8], pkttype: u32) -> bool {
        let proto = u16::from_be_bytes([eth[12], eth[13]]);
        run(prog, eth, 14, proto, pkttype) != 0
    }

    #[test]
    fn keeps_tcp_of_targets_and_all_icmp() {
        let targets: Vec<IpAddr> = vec![
            "198.18.2.1".parse().unwrap(),
            "2001:db8:2::1".parse().unwrap(),
        ];
        let prog = program(false, &targets);
        let syn = TcpSpec::new(40000, 80, TcpFlags::SYN);
        let to_target = tcp_v4([198, 18, 1, 1], [198, 18, 2, 1], syn.clone()).ethernet();
        let from_target = tcp_v4([198, 18, 2, 1], [198, 18, 1, 1], syn.clone()).ethernet();
        let other = tcp_v4([198, 18, 1, 1], [198, 18, 2, 2], syn.clone()).ethernet();
        let icmp = icmp_v4([198, 18, 1, 254], [198, 18, 1, 1], 3, 13, &[0; 28]).ethernet();
        assert!(verdict(&prog, &to_target, 0));
        assert!(verdict(&prog, &from_target, 0));
        assert!(!verdict(&prog, &other, 0));
        assert!(verdict(&prog, &icmp, 0));
        let v6_to = tcp_v6("2001:db8:1::1", "2001:db8:2::1", syn.clone()).ethernet();
        let v6_from = tcp_v6("2001:db8:2::1", "2001:db8:1::1", syn.clone()).ethernet();
        let v6_other = tcp_v6("2001:db8:1::1", "2001:db8:2::2", syn.clone()).ethernet();
        let v6_near = tcp_v6("2001:db8:1::1", "2001:db8:2:0:1::1", syn).ethernet();
        let v6_icmp = icmp_v6("2001:db8:1::fe", "2001:db8:1::1", 1, 1, &[0; 40]).ethernet();
        assert!(verdict(&prog, &v6_to, 0));
        assert!(verdict(&prog, &v6_from, 0));
        assert!(!verdict(&prog, &v6_other, 0));
        assert!(!verdict(&prog, &v6_near, 0));
        assert!(verdict(&prog, &v6_icmp, 0));
    }

    #[test]
    fn loopback_drops_outgoing_copy() {
        let targets: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let prog = program(true, &targets);
        let syn = tcp_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 1],
            TcpSpec::new(1, 2, TcpFlags::SYN),
        )
        .ethernet();
        assert!(verdict(&prog, &syn, 0));
        assert!(!verdict(&prog, &syn, PACKET_OUTGOING));
    }

    #[test]
    fn many_targets_fall_back_to_protocol_filter() {
        let targets: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([198, 18, 3, i])).collect();
        let prog = program(false, &targets);
        let any = tcp_v4(
            [198, 18, 1, 1],
            [198, 18, 9, 9],
            TcpSpec::new(1, 2, TcpFlags::SYN),
        )
        .ethernet();
        assert!(verdict(&prog, &any, 0));
        let v6 = tcp_v6(
            "2001:db8:1::1",
            "2001:db8:2::2",
            TcpSpec::new(1, 2, TcpFlags::SYN),
        )
        .ethernet();
        assert!(!verdict(&prog, &v6, 0), "no IPv6 targets: no IPv6 TCP");
    }

    #[test]
    fn every_jump_stays_inside_the_program() {
        let targets: Vec<IpAddr> = (0..8u16)
            .map(|i| IpAddr::from([0x2001, 0xdb8, 2, 0, 0, 0, 0, i]))
            .chain((0..32u8).map(|i| IpAddr::from([198, 18, 2, i])))
            .collect();
        let prog = program(true, &targets);
        for (i, insn) in prog.iter().enumerate() {
            if insn.code == JEQ_K {
                assert!(i + 1 + (insn.jt as usize) < prog.len());
                assert!(i + 1 + (insn.jf as usize) < prog.len());
            }
        }
        assert_eq!(prog.last().unwrap().code, RET_K);
    }
}
