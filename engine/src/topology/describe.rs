use super::{NodeKind, Topology};
use std::fmt;

/// The printable description of a topology, in the format of Kafka Streams'
/// `TopologyDescription`, so tooling and eyes used to one read the other.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyDescription {
    text: String,
}

impl TopologyDescription {
    pub(crate) fn of(t: &Topology) -> TopologyDescription {
        let mut out = String::from("Topologies:\n");
        let subs = t.subtopologies();
        let name = |i: usize| t.nodes[i].name.clone();
        for sub in &subs {
            out.push_str(&format!("   Sub-topology: {}\n", sub.id));
            for &i in &sub.nodes {
                let n = &t.nodes[i];
                let line = match &n.kind {
                    NodeKind::Source { topics } => {
                        format!("    Source: {} (topics: [{}])\n", n.name, topics.join(", "))
                    }
                    NodeKind::Processor { .. } => format!(
                        "    Processor: {} (stores: [{}])\n",
                        n.name,
                        n.stores.join(", ")
                    ),
                    NodeKind::Sink { topic, .. } => {
                        format!("    Sink: {} (topic: {})\n", n.name, topic)
                    }
                };
                out.push_str(&line);
                if !matches!(n.kind, NodeKind::Sink { .. }) {
                    let children: Vec<String> = n.children.iter().map(|&c| name(c)).collect();
                    out.push_str(&format!(
                        "      --> {}\n",
                        if children.is_empty() {
                            "none".to_string()
                        } else {
                            children.join(", ")
                        }
                    ));
                }
                if !n.parents.is_empty() {
                    let parents: Vec<String> = n.parents.iter().map(|&p| name(p)).collect();
                    out.push_str(&format!("      <-- {}\n", parents.join(", ")));
                }
            }
            out.push('\n');
        }
        for (k, g) in t.globals.iter().enumerate() {
            out.push_str(&format!(
                "  Sub-topology: {} for global store (will not generate tasks)\n",
                subs.len() + k
            ));
            out.push_str(&format!(
                "    Source: {} (topics: [{}])\n",
                g.source_name, g.topic
            ));
            out.push_str(&format!("      --> {}\n", g.processor_name));
            out.push_str(&format!(
                "    Processor: {} (stores: [{}])\n      --> none\n      <-- {}\n\n",
                g.processor_name, g.spec.name, g.source_name
            ));
        }
        TopologyDescription { text: out }
    }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
