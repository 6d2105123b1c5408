//! Transformation 3: the same events cut into batches of another size.

use super::*;

// ---------------------------------------------------------------------------------------
// 3. Re-chunking batches.
// ---------------------------------------------------------------------------------------

pub(crate) fn batch(agent: &str, node: &str, seq: usize, events: Vec<Value>) -> Value {
    json!({"version": 1, "agent_id": agent, "node": node, "seq": seq, "events": events})
}

pub(crate) fn rechunk(sc: &Scenario, size: usize) -> Variant {
    let all: Vec<Value> = sc
        .batches()
        .iter()
        .flat_map(|b| events_of(b).cloned().collect::<Vec<_>>())
        .collect();
    let batches = all
        .chunks(size)
        .enumerate()
        .map(|(i, c)| batch("metamorphic-rechunk", "replay", i + 1, c.to_vec()))
        .collect();
    Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    }
}
