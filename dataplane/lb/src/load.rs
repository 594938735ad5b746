//! Loading the object and its programs, attaching the socket-LB hooks.

use std::os::fd::AsFd;

use aya::{
    Ebpf,
    programs::{CgroupAttachMode, Program, links::FdLink},
};
use tracing::debug;

use crate::{EBPF_OBJECT, LbError};

/// Parses the embedded [`EBPF_OBJECT`] and creates its maps. Programs are not loaded yet.
pub fn load() -> Result<Ebpf, LbError> {
    load_object(EBPF_OBJECT)
}

/// Like [`load`], for an object supplied by the caller.
pub fn load_object(object: &[u8]) -> Result<Ebpf, LbError> {
    if object.is_empty() {
        return Err(LbError::ObjectMissing);
    }
    Ebpf::load(object).map_err(|e| LbError::Object(Box::new(e)))
}

/// Loads every program of `ebpf` into the kernel, through the verifier, and returns their
/// names, sorted. Fails on the first program the kernel rejects (the error carries the
/// verifier log) or on a program kind this crate does not know.
pub fn load_all_programs(ebpf: &mut Ebpf) -> Result<Vec<String>, LbError> {
    let mut names = Vec::new();
    for (name, program) in ebpf.programs_mut() {
        let loaded = match program {
            Program::CgroupSockAddr(p) => p.load(),
            Program::CgroupSock(p) => p.load(),
            Program::SchedClassifier(p) => p.load(),
            other => {
                return Err(LbError::ProgramKind {
                    program: name.to_owned(),
                    actual: format!("{:?}", other.prog_type()),
                    expected: "cgroup sock_addr, cgroup sock or tc classifier program",
                });
            }
        };
        loaded.map_err(|e| LbError::Program {
            program: name.to_owned(),
            action: "load",
            source: Box::new(e),
        })?;
        debug!(program = name, "BPF program loaded");
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// Attaches the loaded cgroup program `program` (one of
/// [`crate::common::programs::SOCKET_LB`]) to the cgroup v2 directory `cgroup`, and returns
/// the link: dropping it detaches the program, pinning it keeps it attached past this process.
///
/// With bpf_link (which aya uses on kernels that have it) cgroup attachments always stack with
/// other programs on the cgroup, including a previous daemon's link while it is replaced; the
/// kernel refuses explicit attach flags there, so the mode is the default.
pub fn attach_cgroup(ebpf: &mut Ebpf, program: &str, cgroup: impl AsFd) -> Result<FdLink, LbError> {
    let found = ebpf
        .program_mut(program)
        .ok_or_else(|| LbError::ProgramMissing {
            program: program.to_owned(),
        })?;
    let attach_error = |e| LbError::Program {
        program: program.to_owned(),
        action: "attach",
        source: Box::new(e),
    };
    let link_error = |e| LbError::Link {
        program: program.to_owned(),
        source: Box::new(e),
    };
    let link = match found {
        Program::CgroupSockAddr(p) => {
            let id = p
                .attach(cgroup, CgroupAttachMode::Single)
                .map_err(attach_error)?;
            FdLink::try_from(p.take_link(id).map_err(attach_error)?).map_err(link_error)?
        }
        Program::CgroupSock(p) => {
            let id = p
                .attach(cgroup, CgroupAttachMode::Single)
                .map_err(attach_error)?;
            FdLink::try_from(p.take_link(id).map_err(attach_error)?).map_err(link_error)?
        }
        other => {
            return Err(LbError::ProgramKind {
                program: program.to_owned(),
                actual: format!("{:?}", other.prog_type()),
                expected: "cgroup sock_addr or cgroup sock program",
            });
        }
    };
    debug!(program, "BPF program attached to cgroup");
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_object_is_reported_missing() {
        assert!(matches!(load_object(&[]), Err(LbError::ObjectMissing)));
    }
}
