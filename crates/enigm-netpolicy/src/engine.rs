//! Compiling a policy document and deciding flows against it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use enigm_types::{DeviceState, TrustState};
use serde::Serialize;

use crate::document::{
    self, Action, MAX_BLOCKLISTS, MAX_CIDRS, MAX_DOMAINS, MAX_ID_LEN, MAX_LAYERS, MAX_LIST,
    MAX_RULES, NetworkMatch, ParseError, PolicyDocument, RouteSpec,
};
mod bytes;

pub use bytes::{BYTES_VERSION, BytesError, reseal_bytes};

use crate::matchers::{
    Addr, Cidr, CidrError, CidrSet, DomainError, DomainSet, NormalName, Suffixes,
};

/// The implicit rule that decides when no layer routed the flow.
pub const DEFAULT_RULE: &str = "default";
/// The implicit rule that decides before any layer: device, input or policy not usable.
pub const FAIL_CLOSED_RULE: &str = "fail-closed";

/// Why a flow is blocked: a stable category, never a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason<'p> {
    /// The device's trust state is INACTIVE.
    DeviceInactive,
    /// The device's lifecycle is not `trusted` or `restricted` (pending, revoked, replaced,
    /// retired).
    DeviceNotActive,
    /// The trust state, lifecycle, app-or-category or destination is missing.
    MissingInput,
    /// The flow's domain name is not a valid name.
    InvalidDestination,
    /// No usable policy: none given, or it failed to parse or compile.
    NoPolicy,
    /// No layer routed the flow.
    DefaultDeny,
    /// A block rule's own reason.
    Policy(&'p str),
}

/// Reasons a policy's block rule may not use: the engine's own.
pub const RESERVED_REASONS: [&str; 6] = [
    "device-inactive",
    "device-not-active",
    "missing-input",
    "invalid-destination",
    "no-policy",
    "default-deny",
];

impl<'p> BlockReason<'p> {
    pub const fn as_str(&self) -> &'p str {
        match self {
            BlockReason::DeviceInactive => "device-inactive",
            BlockReason::DeviceNotActive => "device-not-active",
            BlockReason::MissingInput => "missing-input",
            BlockReason::InvalidDestination => "invalid-destination",
            BlockReason::NoPolicy => "no-policy",
            BlockReason::DefaultDeny => "default-deny",
            BlockReason::Policy(reason) => reason,
        }
    }
}

impl Serialize for BlockReason<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a flow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route<'p> {
    EnigmProxy,
    Vpn(&'p str),
    TorGateway,
    Direct,
    Block(BlockReason<'p>),
}

impl Route<'_> {
    pub const fn is_block(&self) -> bool {
        matches!(self, Route::Block(_))
    }
}

/// The outcome and the rule that decided it (a policy rule id, [`DEFAULT_RULE`] or
/// [`FAIL_CLOSED_RULE`]). Borrows from the compiled policy so that deciding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Decision<'p> {
    pub route: Route<'p>,
    pub rule: &'p str,
}

impl<'p> Decision<'p> {
    /// A block by the implicit [`FAIL_CLOSED_RULE`], made before any layer.
    pub const fn fail_closed(reason: BlockReason<'p>) -> Decision<'p> {
        Decision {
            route: Route::Block(reason),
            rule: FAIL_CLOSED_RULE,
        }
    }
}

/// One layer's verdict in an explanation: the first rule of the layer that matched, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerVerdict<'p> {
    pub layer: &'p str,
    pub rule: Option<&'p str>,
}

/// A decision with every layer's verdict (empty when the decision was made before the layers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation<'p> {
    pub decision: Decision<'p>,
    pub layers: Vec<LayerVerdict<'p>>,
}

/// The device as the engine sees it. `None` is a missing input and blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceContext {
    pub trust_state: Option<TrustState>,
    pub lifecycle: Option<DeviceState>,
}

/// One flow: who sends it (app and/or category; at least one), where to (domain and/or
/// address; at least one) and over which network (absent: an unknown network, untrusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flow<'a> {
    pub app: Option<&'a str>,
    pub category: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub network: Option<&'a str>,
}

/// Why a parsed document is not a policy the engine can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("the policy has {0} layers, more than the {MAX_LAYERS} allowed")]
    TooManyLayers(usize),
    #[error("the policy has more than {MAX_RULES} rules")]
    TooManyRules,
    #[error("the policy has {0} blocklists, more than the {MAX_BLOCKLISTS} allowed")]
    TooManyBlocklists(usize),
    #[error("the policy has more than {MAX_DOMAINS} domain names")]
    TooManyDomains,
    #[error("the policy has more than {MAX_CIDRS} CIDRs")]
    TooManyCidrs,
    #[error("a list in `{0}` has more than {MAX_LIST} entries")]
    ListTooLong(String),
    #[error(
        "`{0}` is not a valid id (1 to {MAX_ID_LEN} of ASCII letters, digits, `-`, `_`, `.`, `:`)"
    )]
    BadId(String),
    #[error("rule id `{0}` is used twice or is reserved")]
    DuplicateRule(String),
    #[error("layer id `{0}` is used twice")]
    DuplicateLayer(String),
    #[error("rule `{0}` has an empty condition list; leave the condition out to match every flow")]
    EmptyCondition(String),
    #[error("rule `{rule}` names unknown blocklist `{blocklist}`")]
    UnknownBlocklist { rule: String, blocklist: String },
    #[error("rule `{rule}` has domain `{domain}` that is not a valid name: {error}")]
    BadDomain {
        rule: String,
        domain: String,
        error: DomainError,
    },
    #[error("rule `{rule}`: {error}")]
    BadCidr { rule: String, error: CidrError },
    #[error("rule `{0}` routes direct but the policy does not set `allow_direct`")]
    DirectNotAllowed(String),
    #[error("rule `{0}` is not a block rule but has `reopenable_by`")]
    ReopenOnRoute(String),
    #[error("rule `{rule}` may be re-opened by `{by}`, which is not a route rule of a later layer")]
    BadReopen { rule: String, by: String },
    #[error("rule `{0}` blocks with a reserved or invalid reason")]
    BadReason(String),
}

/// A policy that failed to parse or to compile.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// One definition of an id with the audit log, which records the deciding rule's id as an
/// `enigm_types::NetworkRuleId`: every id a policy compiles with can be audited.
fn valid_id(id: &str) -> bool {
    const _: () = assert!(MAX_ID_LEN == enigm_types::NetworkRuleId::MAX_LEN);
    enigm_types::NetworkRuleId::is_valid(id)
}

/// A block reason a policy may use: 1 to 128 of `[a-z0-9_-]`, not one of the engine's own.
fn valid_reason(reason: &str) -> bool {
    !reason.is_empty()
        && reason.len() <= MAX_ID_LEN
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !RESERVED_REASONS.contains(&reason)
}

/// A sorted list of strings (apps, categories): small, binary-searched.
#[derive(Debug, Clone)]
struct StrSet(Box<[Box<str>]>);

impl StrSet {
    fn new(items: &[String]) -> StrSet {
        let set: BTreeSet<&str> = items.iter().map(String::as_str).collect();
        StrSet(set.into_iter().map(Box::from).collect())
    }

    #[inline]
    fn contains(&self, item: &str) -> bool {
        // Most lists (apps of a rule, trusted networks) are a few entries long: comparing each
        // is quicker than a binary search, as `==` compares lengths before bytes.
        if self.0.len() <= 8 {
            return self.0.iter().any(|s| **s == *item);
        }
        self.0.binary_search_by(|probe| (**probe).cmp(item)).is_ok()
    }
}

fn bit_trust(state: TrustState) -> u8 {
    match state {
        TrustState::Protected => 1,
        TrustState::ReviewRequired => 2,
        TrustState::Inactive => 4,
    }
}

fn bit_lifecycle(state: DeviceState) -> u8 {
    match state {
        DeviceState::PendingEnrollment => 1,
        DeviceState::Trusted => 2,
        DeviceState::Restricted => 4,
        DeviceState::Revoked => 8,
        DeviceState::Replaced => 16,
        DeviceState::Retired => 32,
    }
}

#[derive(Debug, Clone)]
struct CompiledMatch {
    apps: Option<StrSet>,
    categories: Option<StrSet>,
    domains: Option<DomainSet>,
    cidrs: Option<CidrSet>,
    blocklist: Option<usize>,
    network: NetworkMatch,
    trust_states: Option<u8>,
    lifecycle: Option<u8>,
}

#[derive(Debug, Clone)]
enum CompiledAction {
    Block {
        reason: Box<str>,
        /// Global indices of the rules that re-open it, sorted.
        reopenable_by: Box<[usize]>,
    },
    Route(CompiledRoute),
}

#[derive(Debug, Clone)]
enum CompiledRoute {
    EnigmProxy,
    Vpn(Box<str>),
    TorGateway,
    Direct,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    id: Box<str>,
    matches: CompiledMatch,
    action: CompiledAction,
}

#[derive(Debug, Clone)]
struct CompiledLayer {
    id: Box<str>,
    /// Range of global rule indices.
    rules: std::ops::Range<usize>,
}

#[derive(Debug, Clone)]
struct CompiledBlocklist {
    domains: DomainSet,
    cidrs: CidrSet,
}

/// A policy compiled once into matchers; [`CompiledPolicy::decide`] is pure and allocates
/// nothing.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Kept for the byte form, whose decoder refuses a `direct` route without it.
    allow_direct: bool,
    trusted_networks: StrSet,
    /// The most labels of any domain pattern: longer suffixes of a flow are not hashed.
    max_labels: usize,
    blocklists: Box<[CompiledBlocklist]>,
    layers: Box<[CompiledLayer]>,
    rules: Box<[CompiledRule]>,
}

/// What the layers see of one flow, computed once per decision.
struct Prepared<'a, 's> {
    app: Option<&'a str>,
    category: Option<&'a str>,
    /// Filled in place in the caller's frame (see [`Suffixes::parse_into`]).
    suffixes: &'s Suffixes,
    has_domain: bool,
    addr: Option<Addr>,
    trusted_network: bool,
    trust: u8,
    lifecycle: u8,
}

/// Blocklist memberships computed lazily, at most once each per decision.
struct BlocklistCache {
    known: u64,
    member: u64,
}

/// Running counts over the whole policy while compiling.
#[derive(Default)]
struct Totals {
    domains: usize,
    cidrs: usize,
    max_labels: usize,
}

fn compile_domains(
    rule: &str,
    domains: &[String],
    totals: &mut Totals,
) -> Result<DomainSet, CompileError> {
    totals.domains = totals.domains.saturating_add(domains.len());
    if totals.domains > MAX_DOMAINS {
        return Err(CompileError::TooManyDomains);
    }
    let fps = domains
        .iter()
        .map(|d| {
            NormalName::parse(d)
                .map(|n| {
                    totals.max_labels = totals.max_labels.max(n.labels());
                    (n.labels(), n.fingerprint())
                })
                .map_err(|error| CompileError::BadDomain {
                    rule: rule.to_owned(),
                    domain: d.clone(),
                    error,
                })
        })
        .collect::<Result<Vec<(usize, u64)>, _>>()?;
    Ok(DomainSet::new(fps.into_iter()))
}

fn compile_cidrs(
    rule: &str,
    cidrs: &[String],
    totals: &mut Totals,
) -> Result<CidrSet, CompileError> {
    totals.cidrs = totals.cidrs.saturating_add(cidrs.len());
    if totals.cidrs > MAX_CIDRS {
        return Err(CompileError::TooManyCidrs);
    }
    let parsed = cidrs
        .iter()
        .map(|c| {
            Cidr::parse(c).map_err(|error| CompileError::BadCidr {
                rule: rule.to_owned(),
                error,
            })
        })
        .collect::<Result<Vec<Cidr>, _>>()?;
    Ok(CidrSet::new(parsed))
}

fn nonempty<'d, T>(rule: &str, list: &'d Option<Vec<T>>) -> Result<Option<&'d [T]>, CompileError> {
    match list {
        None => Ok(None),
        Some(items) if items.is_empty() => Err(CompileError::EmptyCondition(rule.to_owned())),
        Some(items) if items.len() > MAX_LIST => Err(CompileError::ListTooLong(rule.to_owned())),
        Some(items) => Ok(Some(items)),
    }
}

impl CompiledPolicy {
    /// Parses and compiles a policy document.
    pub fn from_json(bytes: &[u8]) -> Result<CompiledPolicy, PolicyError> {
        Ok(CompiledPolicy::compile(&PolicyDocument::from_json(bytes)?)?)
    }

    /// Compiles a parsed document, refusing anything the semantics leave open.
    pub fn compile(doc: &PolicyDocument) -> Result<CompiledPolicy, CompileError> {
        if doc.layers.len() > MAX_LAYERS {
            return Err(CompileError::TooManyLayers(doc.layers.len()));
        }
        if doc.blocklists.len() > MAX_BLOCKLISTS {
            return Err(CompileError::TooManyBlocklists(doc.blocklists.len()));
        }
        if doc.trusted_networks.len() > MAX_LIST {
            return Err(CompileError::ListTooLong("trusted_networks".to_owned()));
        }
        for network in &doc.trusted_networks {
            if !valid_id(network) {
                return Err(CompileError::BadId(network.clone()));
            }
        }
        let mut totals = Totals::default();
        let mut blocklist_index = BTreeMap::new();
        let mut blocklists = Vec::with_capacity(doc.blocklists.len());
        for (name, list) in &doc.blocklists {
            if !valid_id(name) {
                return Err(CompileError::BadId(name.clone()));
            }
            blocklist_index.insert(name.as_str(), blocklists.len());
            blocklists.push(CompiledBlocklist {
                domains: compile_domains(name, &list.domains, &mut totals)?,
                cidrs: compile_cidrs(name, &list.cidrs, &mut totals)?,
            });
        }

        // Rule ids first: `reopenable_by` names rules of later layers.
        let mut rule_index: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut layer_ids = BTreeSet::new();
        let mut count = 0usize;
        for (layer_no, layer) in doc.layers.iter().enumerate() {
            if !valid_id(&layer.id) {
                return Err(CompileError::BadId(layer.id.clone()));
            }
            if !layer_ids.insert(layer.id.as_str()) {
                return Err(CompileError::DuplicateLayer(layer.id.clone()));
            }
            for rule in &layer.rules {
                if !valid_id(&rule.id) {
                    return Err(CompileError::BadId(rule.id.clone()));
                }
                if rule.id == DEFAULT_RULE
                    || rule.id == FAIL_CLOSED_RULE
                    || rule_index
                        .insert(rule.id.as_str(), (count, layer_no))
                        .is_some()
                {
                    return Err(CompileError::DuplicateRule(rule.id.clone()));
                }
                count += 1;
                if count > MAX_RULES {
                    return Err(CompileError::TooManyRules);
                }
            }
        }

        let mut layers = Vec::with_capacity(doc.layers.len());
        let mut rules = Vec::with_capacity(count);
        for (layer_no, layer) in doc.layers.iter().enumerate() {
            let start = rules.len();
            for rule in &layer.rules {
                rules.push(compile_rule(
                    doc,
                    rule,
                    layer_no,
                    &rule_index,
                    &blocklist_index,
                    &mut totals,
                )?);
            }
            layers.push(CompiledLayer {
                id: layer.id.as_str().into(),
                rules: start..rules.len(),
            });
        }
        Ok(CompiledPolicy {
            allow_direct: doc.allow_direct,
            trusted_networks: StrSet::new(&doc.trusted_networks),
            max_labels: totals.max_labels,
            blocklists: blocklists.into_boxed_slice(),
            layers: layers.into_boxed_slice(),
            rules: rules.into_boxed_slice(),
        })
    }

    /// Whether the device's DNS stub refuses `name`, and the rule that blocks it: a block rule
    /// with no app or category condition (so it is about the name, whatever asks for it) and no
    /// `reopenable_by`, whose domains or blocklist hold the name. A name that is not a valid
    /// domain name is refused too (rule [`FAIL_CLOSED_RULE`]). Conservative: a rule that also
    /// has network, trust or lifecycle conditions refuses the name in every context, since the
    /// stub does not know them per query.
    pub fn refuses_name(&self, name: &str) -> Option<&str> {
        let Ok(suffixes) = crate::matchers::Suffixes::parse(name, self.max_labels) else {
            return Some(FAIL_CLOSED_RULE);
        };
        self.rules.iter().find_map(|rule| {
            let CompiledAction::Block { reopenable_by, .. } = &rule.action else {
                return None;
            };
            let matches = &rule.matches;
            if !reopenable_by.is_empty() || matches.apps.is_some() || matches.categories.is_some() {
                return None;
            }
            let by_domain = matches
                .domains
                .as_ref()
                .is_some_and(|domains| domains.matches(&suffixes));
            let by_list = matches.blocklist.is_some_and(|index| {
                self.blocklists
                    .get(index)
                    .is_some_and(|list| list.domains.matches(&suffixes))
            });
            (by_domain || by_list).then_some(&*rule.id)
        })
    }

    /// Which kinds of route some rule of the policy takes: what a device's firewall lets out.
    pub fn routes_used(&self) -> crate::firewall::RoutesUsed {
        let mut used = crate::firewall::RoutesUsed::default();
        for rule in self.rules.iter() {
            match &rule.action {
                CompiledAction::Route(CompiledRoute::EnigmProxy) => used.enigm_proxy = true,
                CompiledAction::Route(CompiledRoute::Vpn(_)) => used.vpn = true,
                CompiledAction::Route(CompiledRoute::TorGateway) => used.tor_gateway = true,
                CompiledAction::Route(CompiledRoute::Direct) => used.direct = true,
                CompiledAction::Block { .. } => {}
            }
        }
        used
    }

    /// The VPN locations some rule routes to, sorted, each once: where the VPN control plane
    /// may place a device under this policy (a location no rule names is never assigned).
    pub fn vpn_locations(&self) -> Vec<&str> {
        let mut locations: Vec<&str> = self
            .rules
            .iter()
            .filter_map(|rule| match &rule.action {
                CompiledAction::Route(CompiledRoute::Vpn(location)) => Some(&**location),
                _ => None,
            })
            .collect();
        locations.sort_unstable();
        locations.dedup();
        locations
    }

    /// Bytes held by the domain tables and CIDR arrays of the blocklists.
    pub fn blocklist_bytes(&self) -> (usize, usize) {
        self.blocklists.iter().fold((0, 0), |(d, c), list| {
            (d + list.domains.size_bytes(), c + list.cidrs.size_bytes())
        })
    }

    /// Decides `flow` for `device`. See the crate docs for the semantics.
    pub fn decide<'p>(&'p self, device: &DeviceContext, flow: &Flow<'_>) -> Decision<'p> {
        self.run(device, flow, None)
    }

    /// Decides `flow` and says which rule of each layer matched.
    pub fn explain<'p>(&'p self, device: &DeviceContext, flow: &Flow<'_>) -> Explanation<'p> {
        let mut layers = Vec::with_capacity(self.layers.len());
        let decision = self.run(device, flow, Some(&mut layers));
        Explanation { decision, layers }
    }

    fn run<'p>(
        &'p self,
        device: &DeviceContext,
        flow: &Flow<'_>,
        explain: Option<&mut Vec<LayerVerdict<'p>>>,
    ) -> Decision<'p> {
        let mut suffixes = Suffixes::none();
        match prepare(
            device,
            flow,
            &self.trusted_networks,
            self.max_labels,
            &mut suffixes,
        ) {
            Ok(prepared) => self.run_prepared(&prepared, explain),
            Err(reason) => Decision::fail_closed(reason),
        }
    }

    #[inline]
    fn run_prepared<'p>(
        &'p self,
        prepared: &Prepared<'_, '_>,
        mut explain: Option<&mut Vec<LayerVerdict<'p>>>,
    ) -> Decision<'p> {
        let mut cache = BlocklistCache {
            known: 0,
            member: 0,
        };
        // The earliest block verdicts not (yet) re-opened; most policies have at most one.
        // Rule indices fit in u16 (MAX_RULES); NONE marks a re-opened block.
        const NONE: u16 = u16::MAX;
        let mut pending = [NONE; MAX_LAYERS];
        let mut pending_len = 0usize;
        let mut candidate: Option<usize> = None;
        for layer in self.layers.iter() {
            let verdict = self
                .rules
                .get(layer.rules.clone())
                .unwrap_or_default()
                .iter()
                .position(|rule| self.matches(&rule.matches, prepared, &mut cache))
                .map(|i| layer.rules.start + i);
            if let Some(out) = explain.as_deref_mut() {
                out.push(LayerVerdict {
                    layer: &layer.id,
                    rule: verdict.and_then(|i| self.rules.get(i)).map(|r| &*r.id),
                });
            }
            let Some(index) = verdict else { continue };
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            match &rule.action {
                CompiledAction::Block { reopenable_by, .. } => {
                    // A block no later rule can re-open is final once no earlier block is
                    // pending (an earlier one, if not re-opened later, would decide instead).
                    if reopenable_by.is_empty() && pending_len == 0 && explain.is_none() {
                        return self.decision_of(index);
                    }
                    if let Some(slot) = pending.get_mut(pending_len) {
                        *slot = u16::try_from(index).unwrap_or(NONE);
                        pending_len += 1;
                    }
                }
                CompiledAction::Route(_) => {
                    // This route re-opens every pending block that names it.
                    for slot in pending.iter_mut().take(pending_len) {
                        if *slot != NONE && self.reopened_by(usize::from(*slot), index) {
                            *slot = NONE;
                        }
                    }
                    candidate = candidate.or(Some(index));
                }
            }
        }
        let first_block = pending
            .iter()
            .take(pending_len)
            .find(|&&slot| slot != NONE)
            .map(|&slot| usize::from(slot));
        match first_block.or(candidate) {
            Some(index) => self.decision_of(index),
            None => Decision {
                route: Route::Block(BlockReason::DefaultDeny),
                rule: DEFAULT_RULE,
            },
        }
    }

    fn reopened_by(&self, block: usize, route: usize) -> bool {
        matches!(
            self.rules.get(block).map(|r| &r.action),
            Some(CompiledAction::Block { reopenable_by, .. }) if reopenable_by.binary_search(&route).is_ok()
        )
    }

    fn decision_of(&self, index: usize) -> Decision<'_> {
        let Some(rule) = self.rules.get(index) else {
            return Decision::fail_closed(BlockReason::NoPolicy);
        };
        let route = match &rule.action {
            CompiledAction::Block { reason, .. } => Route::Block(BlockReason::Policy(reason)),
            CompiledAction::Route(CompiledRoute::EnigmProxy) => Route::EnigmProxy,
            CompiledAction::Route(CompiledRoute::Vpn(location)) => Route::Vpn(location),
            CompiledAction::Route(CompiledRoute::TorGateway) => Route::TorGateway,
            CompiledAction::Route(CompiledRoute::Direct) => Route::Direct,
        };
        Decision {
            route,
            rule: &rule.id,
        }
    }

    #[inline]
    fn matches(
        &self,
        m: &CompiledMatch,
        flow: &Prepared<'_, '_>,
        cache: &mut BlocklistCache,
    ) -> bool {
        if let Some(bits) = m.trust_states
            && bits & flow.trust == 0
        {
            return false;
        }
        if let Some(bits) = m.lifecycle
            && bits & flow.lifecycle == 0
        {
            return false;
        }
        match m.network {
            NetworkMatch::Any => {}
            NetworkMatch::Trusted if !flow.trusted_network => return false,
            NetworkMatch::Untrusted if flow.trusted_network => return false,
            NetworkMatch::Trusted | NetworkMatch::Untrusted => {}
        }
        if let Some(apps) = &m.apps
            && !flow.app.is_some_and(|app| apps.contains(app))
        {
            return false;
        }
        if let Some(categories) = &m.categories
            && !flow.category.is_some_and(|c| categories.contains(c))
        {
            return false;
        }
        if let Some(cidrs) = &m.cidrs
            && !flow.addr.is_some_and(|a| cidrs.contains(a))
        {
            return false;
        }
        if let Some(domains) = &m.domains
            && !(flow.has_domain && domains.matches(flow.suffixes))
        {
            return false;
        }
        if let Some(list) = m.blocklist
            && !self.in_blocklist(list, flow, cache)
        {
            return false;
        }
        true
    }

    fn in_blocklist(
        &self,
        list: usize,
        flow: &Prepared<'_, '_>,
        cache: &mut BlocklistCache,
    ) -> bool {
        // INVARIANT: list < MAX_BLOCKLISTS = 64 (checked at compile time).
        let bit = 1u64
            .checked_shl(u32::try_from(list).unwrap_or(u32::MAX))
            .unwrap_or(0);
        if cache.known & bit != 0 {
            return cache.member & bit != 0;
        }
        let member = self.blocklists.get(list).is_some_and(|b| {
            (flow.has_domain && b.domains.matches(flow.suffixes))
                || flow.addr.is_some_and(|a| b.cidrs.contains(a))
        });
        cache.known |= bit;
        if member {
            cache.member |= bit;
        }
        member
    }
}

fn compile_rule(
    doc: &PolicyDocument,
    rule: &document::Rule,
    layer_no: usize,
    rule_index: &BTreeMap<&str, (usize, usize)>,
    blocklist_index: &BTreeMap<&str, usize>,
    totals: &mut Totals,
) -> Result<CompiledRule, CompileError> {
    let id = rule.id.as_str();
    let m = &rule.matches;
    let strings = |list: &Option<Vec<String>>| -> Result<Option<StrSet>, CompileError> {
        match nonempty(id, list)? {
            None => Ok(None),
            Some(items) => {
                if let Some(bad) = items.iter().find(|s| !valid_id(s)) {
                    return Err(CompileError::BadId(bad.clone()));
                }
                Ok(Some(StrSet::new(items)))
            }
        }
    };
    let matches = CompiledMatch {
        apps: strings(&m.apps)?,
        categories: strings(&m.categories)?,
        domains: nonempty(id, &m.domains)?
            .map(|d| compile_domains(id, d, totals))
            .transpose()?,
        cidrs: nonempty(id, &m.cidrs)?
            .map(|c| compile_cidrs(id, c, totals))
            .transpose()?,
        blocklist: m
            .blocklist
            .as_ref()
            .map(|name| {
                blocklist_index.get(name.as_str()).copied().ok_or_else(|| {
                    CompileError::UnknownBlocklist {
                        rule: id.to_owned(),
                        blocklist: name.clone(),
                    }
                })
            })
            .transpose()?,
        network: m.network.unwrap_or(NetworkMatch::Any),
        trust_states: nonempty(id, &m.trust_states)?
            .map(|s| s.iter().fold(0u8, |bits, &t| bits | bit_trust(t))),
        lifecycle: nonempty(id, &m.lifecycle)?
            .map(|s| s.iter().fold(0u8, |bits, &l| bits | bit_lifecycle(l))),
    };
    let action = match &rule.action {
        Action::Block(block) => {
            let reason = block.reason.as_str();
            if !valid_reason(reason) {
                return Err(CompileError::BadReason(id.to_owned()));
            }
            if rule.reopenable_by.len() > MAX_LIST {
                return Err(CompileError::ListTooLong(id.to_owned()));
            }
            let mut reopeners = Vec::with_capacity(rule.reopenable_by.len());
            for by in &rule.reopenable_by {
                let bad = || CompileError::BadReopen {
                    rule: id.to_owned(),
                    by: by.clone(),
                };
                let &(index, by_layer) = rule_index.get(by.as_str()).ok_or_else(bad)?;
                let is_route = doc
                    .layers
                    .get(by_layer)
                    .and_then(|l| l.rules.iter().find(|r| r.id == *by))
                    .is_some_and(|r| matches!(r.action, Action::Route(_)));
                if by_layer <= layer_no || !is_route {
                    return Err(bad());
                }
                reopeners.push(index);
            }
            reopeners.sort_unstable();
            reopeners.dedup();
            CompiledAction::Block {
                reason: reason.into(),
                reopenable_by: reopeners.into_boxed_slice(),
            }
        }
        Action::Route(route) => {
            if !rule.reopenable_by.is_empty() {
                return Err(CompileError::ReopenOnRoute(id.to_owned()));
            }
            CompiledAction::Route(match route {
                RouteSpec::EnigmProxy => CompiledRoute::EnigmProxy,
                RouteSpec::TorGateway => CompiledRoute::TorGateway,
                RouteSpec::Vpn(location) => {
                    if !valid_id(location) {
                        return Err(CompileError::BadId(location.clone()));
                    }
                    CompiledRoute::Vpn(location.as_str().into())
                }
                RouteSpec::Direct => {
                    if !doc.allow_direct {
                        return Err(CompileError::DirectNotAllowed(id.to_owned()));
                    }
                    CompiledRoute::Direct
                }
            })
        }
    };
    Ok(CompiledRule {
        id: id.into(),
        matches,
        action,
    })
}

/// The fail-closed checks, in order, then what the layers need of the flow.
#[inline]
fn prepare<'a, 's>(
    device: &DeviceContext,
    flow: &Flow<'a>,
    trusted_networks: &StrSet,
    max_labels: usize,
    suffixes: &'s mut Suffixes,
) -> Result<Prepared<'a, 's>, BlockReason<'static>> {
    let (Some(trust), Some(lifecycle)) = (device.trust_state, device.lifecycle) else {
        return Err(BlockReason::MissingInput);
    };
    if !lifecycle.is_active() {
        return Err(BlockReason::DeviceNotActive);
    }
    if trust == TrustState::Inactive {
        return Err(BlockReason::DeviceInactive);
    }
    if (flow.app.is_none() && flow.category.is_none())
        || (flow.domain.is_none() && flow.ip.is_none())
    {
        return Err(BlockReason::MissingInput);
    }
    if let Some(domain) = flow.domain
        && suffixes.parse_into(domain, max_labels).is_err()
    {
        return Err(BlockReason::InvalidDestination);
    }
    Ok(Prepared {
        app: flow.app,
        category: flow.category,
        suffixes,
        has_domain: flow.domain.is_some(),
        addr: flow.ip.map(Addr::of),
        trusted_network: flow.network.is_some_and(|n| trusted_networks.contains(n)),
        trust: bit_trust(trust),
        lifecycle: bit_lifecycle(lifecycle),
    })
}

/// Decides with a policy that may be missing: `None` (no policy, or one that failed to parse or
/// compile) blocks every flow with [`BlockReason::NoPolicy`].
pub fn decide<'p>(
    policy: Option<&'p CompiledPolicy>,
    device: &DeviceContext,
    flow: &Flow<'_>,
) -> Decision<'p> {
    match policy {
        Some(policy) => policy.decide(device, flow),
        None => Decision::fail_closed(BlockReason::NoPolicy),
    }
}

/// [`decide`] with each layer's verdict: without a policy, the fail-closed block and no layers.
pub fn explain<'p>(
    policy: Option<&'p CompiledPolicy>,
    device: &DeviceContext,
    flow: &Flow<'_>,
) -> Explanation<'p> {
    match policy {
        Some(policy) => policy.explain(device, flow),
        None => Explanation {
            decision: Decision::fail_closed(BlockReason::NoPolicy),
            layers: Vec::new(),
        },
    }
}
