//! Multi-process data-parallel training on libtorch's own c10d (Gloo on CPU, NCCL on CUDA): the process group
//! ([`ProcessGroup`]), the flat gradient bucket ([`GradBucket`]), a training rank's view of the
//! run ([`Rank`]) and the launcher that starts one `yolo` process per rank ([`launch`]).

pub mod bucket;
mod ffi;
pub mod group;
pub mod launch;
pub mod nccl;
pub mod rank;

pub use bucket::GradBucket;
pub use group::{Backend, ProcessGroup};
pub use rank::{shard, Rank, RankEnv};
