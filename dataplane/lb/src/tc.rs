//! Attaching the NodePort tc programs to an external interface, and detaching them.
//!
//! Both programs go on every interface NodePort / externalIP / LoadBalancer traffic arrives
//! on: [`programs::NODEPORT_INGRESS`] on its ingress (DNAT, masquerade, restoring masqueraded
//! replies), [`programs::NODEPORT_EGRESS`] on its egress (restoring the source of replies that
//! were not masqueraded). They attach as TCX links (kernel 6.6+), appended after any program
//! already there, so the links are [`aya::programs::links::FdLink`]s that can be pinned.

use aya::{
    Ebpf,
    programs::{
        LinkOrder, Program, SchedClassifier, TcAttachType,
        tc::{SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
    },
};
use tracing::debug;

use crate::{LbError, common::programs};

/// The two links of one interface, owned by the [`Ebpf`] they were attached through until
/// [`detach_nodeport`] or [`take_nodeport_links`].
#[derive(Debug)]
pub struct NodePortLinks {
    /// The interface's name.
    pub interface: String,
    /// [`programs::NODEPORT_INGRESS`] on its ingress.
    pub ingress: SchedClassifierLinkId,
    /// [`programs::NODEPORT_EGRESS`] on its egress.
    pub egress: SchedClassifierLinkId,
}

/// Attaches the loaded NodePort programs of `ebpf` to `interface` (a name in the calling
/// thread's network namespace). On failure nothing stays attached.
pub fn attach_nodeport(ebpf: &mut Ebpf, interface: &str) -> Result<NodePortLinks, LbError> {
    let ingress = attach(
        ebpf,
        programs::NODEPORT_INGRESS,
        interface,
        TcAttachType::Ingress,
    )?;
    let egress = match attach(
        ebpf,
        programs::NODEPORT_EGRESS,
        interface,
        TcAttachType::Egress,
    ) {
        Ok(egress) => egress,
        Err(e) => {
            // Best effort: the attach error is the one worth reporting.
            if let Ok(program) = classifier(ebpf, programs::NODEPORT_INGRESS) {
                let _ = program.detach(ingress);
            }
            return Err(e);
        }
    };
    Ok(NodePortLinks {
        interface: interface.to_owned(),
        ingress,
        egress,
    })
}

/// Detaches both programs from the interface of `links`.
pub fn detach_nodeport(ebpf: &mut Ebpf, links: NodePortLinks) -> Result<(), LbError> {
    let NodePortLinks {
        interface,
        ingress,
        egress,
    } = links;
    let ingress_result = detach(ebpf, programs::NODEPORT_INGRESS, ingress);
    detach(ebpf, programs::NODEPORT_EGRESS, egress)?;
    ingress_result?;
    debug!(%interface, "NodePort programs detached");
    Ok(())
}

/// Takes ownership of the links out of `ebpf` (ingress, egress), so they can outlive it:
/// `aya::programs::links::FdLink::try_from(link)` then `FdLink::pin(path)` keeps them attached
/// after the process exits. Dropping a taken link detaches it.
pub fn take_nodeport_links(
    ebpf: &mut Ebpf,
    links: NodePortLinks,
) -> Result<(SchedClassifierLink, SchedClassifierLink), LbError> {
    let ingress = classifier(ebpf, programs::NODEPORT_INGRESS)?
        .take_link(links.ingress)
        .map_err(|e| program_error(programs::NODEPORT_INGRESS, "take link", e))?;
    let egress = classifier(ebpf, programs::NODEPORT_EGRESS)?
        .take_link(links.egress)
        .map_err(|e| program_error(programs::NODEPORT_EGRESS, "take link", e))?;
    Ok((ingress, egress))
}

fn attach(
    ebpf: &mut Ebpf,
    program: &'static str,
    interface: &str,
    attach_type: TcAttachType,
) -> Result<SchedClassifierLinkId, LbError> {
    let link = classifier(ebpf, program)?
        .attach_with_options(
            interface,
            attach_type,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(|e| program_error(program, "attach", e))?;
    debug!(program, interface, ?attach_type, "tc program attached");
    Ok(link)
}

fn detach(
    ebpf: &mut Ebpf,
    program: &'static str,
    link: SchedClassifierLinkId,
) -> Result<(), LbError> {
    classifier(ebpf, program)?
        .detach(link)
        .map_err(|e| program_error(program, "detach", e))
}

fn classifier<'a>(
    ebpf: &'a mut Ebpf,
    program: &'static str,
) -> Result<&'a mut SchedClassifier, LbError> {
    let found = ebpf
        .program_mut(program)
        .ok_or_else(|| LbError::ProgramMissing {
            program: program.to_owned(),
        })?;
    match found {
        Program::SchedClassifier(p) => Ok(p),
        other => Err(LbError::ProgramKind {
            program: program.to_owned(),
            actual: format!("{:?}", other.prog_type()),
            expected: "tc classifier program",
        }),
    }
}

fn program_error(
    program: &'static str,
    action: &'static str,
    source: aya::programs::ProgramError,
) -> LbError {
    LbError::Program {
        program: program.to_owned(),
        action,
        source: Box::new(source),
    }
}
