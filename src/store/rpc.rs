//! The crate's own names for Temporal's schedule RPCs and for the gRPC codes
//! they fail with, so that fault injection ([`MemoryStore::fail_next`]) and
//! the crate's API name no type of the gRPC stack.
//!
//! [`MemoryStore::fail_next`]: super::MemoryStore::fail_next

/// A Temporal RPC that the reconciler sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rpc {
    /// `ListSchedules`: the listing, page by page.
    ListSchedules,
    /// `DescribeSchedule`: one schedule, with its conflict token.
    DescribeSchedule,
    /// `CreateSchedule`.
    CreateSchedule,
    /// `UpdateSchedule`: replaces a schedule, guarded by its conflict token.
    UpdateSchedule,
    /// `PatchSchedule`: pauses or unpauses.
    PatchSchedule,
    /// `DeleteSchedule`.
    DeleteSchedule,
    /// `ListSearchAttributes`: the namespace's search attributes.
    ListSearchAttributes,
    /// `DescribeWorkflowExecution` of a schedule's scheduler workflow: who
    /// owns a schedule just created, when its describe waits on the
    /// server's backlog (Temporal 1.29).
    DescribeWorkflowExecution,
}

impl Rpc {
    /// Every RPC, in the order above.
    pub const ALL: [Rpc; 8] = [
        Rpc::ListSchedules,
        Rpc::DescribeSchedule,
        Rpc::CreateSchedule,
        Rpc::UpdateSchedule,
        Rpc::PatchSchedule,
        Rpc::DeleteSchedule,
        Rpc::ListSearchAttributes,
        Rpc::DescribeWorkflowExecution,
    ];

    /// The RPC's name as Temporal's API spells it (and the `rpc` label of
    /// the metrics): `"CreateSchedule"`.
    pub const fn name(self) -> &'static str {
        match self {
            Rpc::ListSchedules => "ListSchedules",
            Rpc::DescribeSchedule => "DescribeSchedule",
            Rpc::CreateSchedule => "CreateSchedule",
            Rpc::UpdateSchedule => "UpdateSchedule",
            Rpc::PatchSchedule => "PatchSchedule",
            Rpc::DeleteSchedule => "DeleteSchedule",
            Rpc::ListSearchAttributes => "ListSearchAttributes",
            Rpc::DescribeWorkflowExecution => "DescribeWorkflowExecution",
        }
    }
}

impl std::fmt::Display for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A gRPC status code that an RPC fails with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The operation was cancelled.
    Cancelled,
    /// An error of no other kind.
    Unknown,
    /// The request is not valid, whatever the server's state.
    InvalidArgument,
    /// The deadline passed before the answer came.
    DeadlineExceeded,
    /// Not found.
    NotFound,
    /// Already exists.
    AlreadyExists,
    /// The caller may not do this.
    PermissionDenied,
    /// A limit was reached: Temporal's rate limits answer this.
    ResourceExhausted,
    /// The server's state refuses the request (a stale conflict token on
    /// Temporal 1.32).
    FailedPrecondition,
    /// Aborted, as by a concurrency conflict.
    Aborted,
    /// Out of range.
    OutOfRange,
    /// Not implemented by the server.
    Unimplemented,
    /// An internal error of the server.
    Internal,
    /// The server cannot be reached, or is not serving.
    Unavailable,
    /// Data was lost.
    DataLoss,
    /// The caller's credentials are missing or not valid.
    Unauthenticated,
}

impl Code {
    /// The code as the gRPC stack names it.
    pub(crate) fn to_grpc(self) -> tonic::Code {
        match self {
            Code::Cancelled => tonic::Code::Cancelled,
            Code::Unknown => tonic::Code::Unknown,
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::PermissionDenied => tonic::Code::PermissionDenied,
            Code::ResourceExhausted => tonic::Code::ResourceExhausted,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::Aborted => tonic::Code::Aborted,
            Code::OutOfRange => tonic::Code::OutOfRange,
            Code::Unimplemented => tonic::Code::Unimplemented,
            Code::Internal => tonic::Code::Internal,
            Code::Unavailable => tonic::Code::Unavailable,
            Code::DataLoss => tonic::Code::DataLoss,
            Code::Unauthenticated => tonic::Code::Unauthenticated,
        }
    }

    /// The code of a gRPC status (`Ok`, which no failure carries, reads as
    /// `Unknown`).
    pub(crate) fn from_grpc(code: tonic::Code) -> Code {
        [
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ]
        .into_iter()
        .find(|ours| ours.to_grpc() == code)
        .unwrap_or(Code::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_is_named_as_temporal_names_it() {
        let names: Vec<&str> = Rpc::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "ListSchedules",
                "DescribeSchedule",
                "CreateSchedule",
                "UpdateSchedule",
                "PatchSchedule",
                "DeleteSchedule",
                "ListSearchAttributes",
                "DescribeWorkflowExecution"
            ]
        );
        assert_eq!(Rpc::UpdateSchedule.to_string(), "UpdateSchedule");
    }

    #[test]
    fn a_grpc_code_reads_back_as_the_code_it_came_from() {
        assert_eq!(
            Code::from_grpc(tonic::Code::ResourceExhausted),
            Code::ResourceExhausted
        );
        assert_eq!(
            Code::from_grpc(tonic::Code::Unauthenticated),
            Code::Unauthenticated
        );
        assert_eq!(Code::from_grpc(tonic::Code::Ok), Code::Unknown);
        for code in [
            Code::Cancelled,
            Code::NotFound,
            Code::DataLoss,
            Code::Unavailable,
        ] {
            assert_eq!(Code::from_grpc(code.to_grpc()), code);
        }
    }

    #[test]
    fn each_code_is_the_grpc_code_of_its_name() {
        assert_eq!(Code::Unavailable.to_grpc(), tonic::Code::Unavailable);
        assert_eq!(
            Code::FailedPrecondition.to_grpc(),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            Code::Unauthenticated.to_grpc(),
            tonic::Code::Unauthenticated
        );
        // Debug names match tonic's for every code.
        for code in [
            Code::Cancelled,
            Code::DataLoss,
            Code::OutOfRange,
            Code::Unknown,
        ] {
            assert_eq!(format!("{code:?}"), format!("{:?}", code.to_grpc()));
        }
    }
}
