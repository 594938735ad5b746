//! Layouts and the filter program, checked byte by byte and run as the kernel runs it.

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_dump_request_is_laid_out_as_the_kernel_reads_it() {
    let bc = remote_filter(&[sa("10.0.0.5:53")]).unwrap();
    let req = dump_request(7, AF_INET, Some(53), Some(&bc));
    assert_eq!(req.len(), 16 + 56 + 4 + bc.len());
    let header = NlMsgHdr::read(&req).unwrap();
    assert_eq!(header.len as usize, req.len());
    assert_eq!(
        (header.kind, header.flags, header.seq),
        (SOCK_DIAG_BY_FAMILY, 0x301, 7)
    );
    // inet_diag_req_v2: family, protocol, ext, pad, states.
    assert_eq!(&req[16..20], &[AF_INET, IPPROTO_UDP, 0, 0]);
    assert_eq!(u32_at(&req, 20), Some(1 << 1));
    // id.idiag_dport, network order.
    assert_eq!(&req[26..28], &[0, 53]);
    // nlattr header.
    assert_eq!(u16_at(&req, 72), Some(u16::try_from(4 + bc.len()).unwrap()));
    assert_eq!(u16_at(&req, 74), Some(1));
}

#[test]
fn a_single_condition_accepts_on_yes_and_rejects_past_the_end() {
    let bc = remote_filter(&[sa("10.0.0.5:53")]).unwrap();
    // op {D_COND, yes 16, no 20} + hostcond {AF_INET, 32, pad, port 53} + 10.0.0.5
    let mut expected = vec![8, 16];
    expected.extend_from_slice(&20u16.to_ne_bytes());
    expected.extend_from_slice(&[AF_INET, 32, 0, 0]);
    expected.extend_from_slice(&53i32.to_ne_bytes());
    expected.extend_from_slice(&[10, 0, 0, 5]);
    assert_eq!(bc, expected);
}

#[test]
fn an_or_chain_jumps_to_the_end_on_every_match() {
    let remotes = [sa("10.0.0.5:53"), sa("[fd00::5]:5353"), sa("10.0.0.6:53")];
    let bc = remote_filter(&remotes).unwrap();
    assert_eq!(bc.len(), 16 + 4 + 28 + 4 + 16);
    // Interpret it as the kernel would (inet_diag_bc_run), for a matching and a missing
    // remote, and audit the "yes" walk.
    let run = |matches: &dyn Fn(usize) -> bool| {
        let (mut at, mut len) = (0usize, bc.len() as isize);
        while len > 0 {
            let (code, yes, no) = (bc[at], bc[at + 1], u16_at(&bc, at + 2).unwrap());
            let take_yes = match code {
                INET_DIAG_BC_JMP => false,
                INET_DIAG_BC_D_COND => matches(at),
                other => panic!("op {other}"),
            };
            let step = if take_yes { yes as usize } else { no as usize };
            at += step;
            len -= step as isize;
        }
        len == 0
    };
    let cond_at = [0usize, 20, 52];
    for (i, _) in remotes.iter().enumerate() {
        assert!(run(&|at| at == cond_at[i]), "remote {i} accepted");
    }
    assert!(!run(&|_| false), "no match rejected");
    let mut at = 0;
    while at < bc.len() {
        let yes = bc[at + 1] as usize;
        assert!(yes >= 4 && yes.is_multiple_of(4));
        at += yes;
    }
    assert_eq!(at, bc.len(), "the yes walk ends exactly at the end");
}

#[test]
fn no_remotes_or_too_many_mean_no_filter() {
    assert!(remote_filter(&[]).is_none());
    let many: Vec<SocketAddr> = (0..4000u16)
        .map(|i| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 53)))
        .collect();
    assert!(remote_filter(&many[..2000]).is_some());
    assert!(remote_filter(&many).is_none());
}

#[test]
fn replies_are_split_and_decoded() {
    let id = SockId {
        sport: 40_000u16.to_be(),
        dport: 53u16.to_be(),
        src: addr::ip_words("::ffff:10.0.0.1".parse().unwrap()).1,
        dst: addr::ip_words("::ffff:10.0.0.5".parse().unwrap()).1,
        ifindex: 0,
        cookie: [0x1234, 0x1],
    };
    let mut buf = Vec::new();
    NlMsgHdr {
        len: 16 + 72 + 8,
        kind: SOCK_DIAG_BY_FAMILY,
        flags: 2,
        seq: 1,
        pid: 0,
    }
    .write(&mut buf);
    buf.extend_from_slice(&[AF_INET6, 1, 0, 0]);
    id.write(&mut buf);
    buf.extend_from_slice(&[0u8; 20]);
    // An attribute (INET_DIAG_SHUTDOWN, one byte, padded).
    buf.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0]);
    NlMsgHdr {
        len: 20,
        kind: NLMSG_DONE,
        flags: 2,
        seq: 1,
        pid: 0,
    }
    .write(&mut buf);
    buf.extend_from_slice(&0i32.to_ne_bytes());
    let replies = replies(&buf);
    assert_eq!(replies.len(), 2);
    let Reply::Socket(socket) = replies[0].1 else {
        panic!("{replies:?}")
    };
    assert_eq!(socket.id, id);
    assert_eq!(socket.id.cookie(), 0x1_0000_1234);
    assert_eq!(socket.remote(), Some(sa("[::ffff:10.0.0.5]:53")));
    assert_eq!(socket.local(), Some(sa("[::ffff:10.0.0.1]:40000")));
    assert_eq!(replies[1].1, Reply::Done(0));

    let destroy = destroy_request(9, &socket);
    assert_eq!(u16_at(&destroy, 4), Some(SOCK_DESTROY));
    assert_eq!(u16_at(&destroy, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
    assert_eq!(destroy[16], AF_INET6);
    assert_eq!(SockId::read(&destroy[24..]), Some(id));
}
