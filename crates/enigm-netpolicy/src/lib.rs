//! Network policy: a fail-closed routing decision engine. No I/O, no clock, no randomness.
//!
//! A policy ([`PolicyDocument`], strict JSON) is an ordered list of layers of rules, with named
//! blocklists and the networks it trusts. It is compiled once ([`CompiledPolicy::compile`]) into
//! matchers; each flow is then decided ([`CompiledPolicy::decide`], [`decide`]) into a
//! [`Decision`]: a [`Route`] (`enigm-proxy`, `vpn(location)`, `tor-gateway`, `direct` or
//! `block(reason)`) and the id of the rule that decided it. [`CompiledPolicy::explain`] also
//! names the rule that matched in each layer. No score, destination or payload appears in a
//! decision: a block reason is a category.
//!
//! # Semantics
//!
//! 1. **Fail closed first**, before any layer, with the implicit rule [`FAIL_CLOSED_RULE`]:
//!    - no usable policy (none, unparseable, not compilable) → `block(no-policy)`;
//!    - the device's trust state or lifecycle unknown, or the flow without an app and a
//!      category, or without a domain and an address → `block(missing-input)`;
//!    - lifecycle other than `trusted`/`restricted` → `block(device-not-active)`;
//!    - trust state `INACTIVE` → `block(device-inactive)`;
//!    - a domain that is not a valid name → `block(invalid-destination)`.
//! 2. **Each layer's verdict** is its first rule whose conditions all hold (an absent condition
//!    holds; an empty match matches every flow), or none.
//! 3. A **block verdict is final** unless a route verdict of a later layer is named in the
//!    block rule's `reopenable_by` (the only way to re-open; compile-time checked to name route
//!    rules of later layers). The decision is the earliest block verdict not re-opened.
//! 4. Otherwise the **first route verdict** decides: later layers may block it (blocks only
//!    tighten) but never change it to another route.
//! 5. Otherwise `block(default-deny)` by the implicit rule [`DEFAULT_RULE`].
//!
//! A network is `untrusted` unless its id is in `trusted_networks`; a flow whose network is
//! unknown is on an untrusted network (rather than blocked: "local networks are untrusted by
//! default" already makes it the conservative reading). A rule may route `direct` only if the
//! policy sets `allow_direct`; otherwise the policy does not compile. An IPv4-mapped IPv6
//! address is matched as its IPv4 address.
//!
//! # Matchers
//!
//! Domain sets are 64-bit fingerprints of names in a flat open-addressing table (12 bytes per
//! name); the flow's suffixes are hashed once per decision. See [`matchers`] for the
//! false-positive probability and the direction it fails in. CIDR sets are sorted, merged
//! intervals per family, binary-searched.
//!
//! # Byte form
//!
//! [`CompiledPolicy::to_bytes`] writes a compiled policy as bytes that
//! [`CompiledPolicy::from_bytes`] decides over without rebuilding its tables (read in place,
//! e.g. from a memory-mapped bundle file), after checking all of it up front: a header with the
//! body's length and checksum, then every size, index and id. Bytes that fail give a typed
//! [`BytesError`] and so no policy, which blocks every flow.

pub mod document;
mod engine;
pub mod firewall;
pub mod matchers;
pub mod vpn;

pub use document::{
    Action, BlockAction, Blocklist, Layer, Match, NetworkMatch, ParseError, PolicyDocument,
    RouteSpec, Rule,
};
pub use engine::{
    BYTES_VERSION, BlockReason, BytesError, CompileError, CompiledPolicy, DEFAULT_RULE, Decision,
    DeviceContext, Explanation, FAIL_CLOSED_RULE, Flow, LayerVerdict, PolicyError,
    RESERVED_REASONS, Route, decide, explain, reseal_bytes,
};
pub use enigm_types::{DeviceState, TrustState};
