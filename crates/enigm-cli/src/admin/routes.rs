//! `enigm admin routes`: the published route and permission table of the API.

use enigm_api::{RouteView, paths};

use super::Ctx;
use crate::output;

pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let reply = ctx.client.get::<Vec<RouteView>>(paths::ROUTES).await?;
    if ctx.json() {
        return output::print_json_list(&reply.raw, None);
    }
    output::print_list(
        &output::route_table(&reply.value),
        reply.value.len(),
        "no routes",
    );
    Ok(())
}
