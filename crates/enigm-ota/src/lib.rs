//! Over-the-air releases as pure logic (enigm-docs §7, §8, §20 D–E; threat "OTA integrity
//! failure").
//!
//! - TUF 1.0 metadata and the client workflow (trusted root, root chain, timestamp, snapshot,
//!   targets and delegations) as a sans-IO state machine: the caller fetches the bytes it asks
//!   for, within the length it names, and feeds them back with the time.
//! - Enigm's release fields on each target and the Release-Signing Authority's detached payload
//!   signature, pinned apart from the Manifest Signing Authority's keys.
//! - The A/B install state machine the agent persists across reboots.
//!
//! This crate does no I/O and names no async runtime or crypto implementation (signatures and
//! digests go through `enigm-crypto`).
