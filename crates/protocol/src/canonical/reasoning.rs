//! Thinking and reasoning control, and the one table that maps effort
//! levels to token budgets in both directions.

/// How hard the model should think.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    /// Barely.
    Minimal,
    /// A little.
    Low,
    /// Some.
    Medium,
    /// A lot.
    High,
    /// As much as it can.
    XHigh,
}

/// Thinking control, as the client expressed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// No thinking.
    Off,
    /// An effort level (OpenAI's `reasoning_effort`).
    Effort(Effort),
    /// A token budget (Anthropic's `budget_tokens`, Gemini's
    /// `thinkingBudget`).
    Budget(u64),
    /// The model decides (Anthropic's adaptive thinking, Gemini's budget −1).
    Adaptive,
}

/// Effort level ↔ budget. A budget maps to the lowest level whose budget
/// covers it.
const TABLE: [(Effort, u64); 5] = [
    (Effort::Minimal, 1_024),
    (Effort::Low, 4_096),
    (Effort::Medium, 16_384),
    (Effort::High, 32_768),
    (Effort::XHigh, 65_536),
];

impl Effort {
    /// The budget this level stands for.
    pub fn budget(self) -> u64 {
        TABLE
            .iter()
            .find(|(effort, _)| *effort == self)
            .map_or(16_384, |(_, budget)| *budget)
    }

    /// The level a budget stands for.
    pub fn from_budget(budget: u64) -> Self {
        TABLE
            .iter()
            .find(|(_, limit)| budget <= *limit)
            .map_or(Self::XHigh, |(effort, _)| *effort)
    }

    /// OpenAI's name for the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::XHigh => "xhigh",
        }
    }

    /// Reads OpenAI's name for a level (`none` is [`Reasoning::Off`], not an
    /// effort).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "minimal" => Some(Self::Minimal),
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "xhigh" => Some(Self::XHigh),
            _ => None,
        }
    }
}

impl Reasoning {
    /// Reads OpenAI's `reasoning_effort` / `reasoning.effort`.
    pub fn from_effort_name(name: &str) -> Option<Self> {
        if name == "none" {
            return Some(Self::Off);
        }
        Effort::parse(name).map(Self::Effort)
    }

    /// The effort to send to an upstream that speaks in levels (`None`: turn
    /// reasoning off). Adaptive becomes medium.
    pub fn effort(self) -> Option<Effort> {
        match self {
            Self::Off => None,
            Self::Effort(effort) => Some(effort),
            Self::Budget(budget) => Some(Effort::from_budget(budget)),
            Self::Adaptive => Some(Effort::Medium),
        }
    }

    /// The budget to send to an upstream that speaks in tokens (`None`:
    /// turn thinking off, or let the model decide when adaptive).
    pub fn budget(self) -> Option<u64> {
        match self {
            Self::Off | Self::Adaptive => None,
            Self::Effort(effort) => Some(effort.budget()),
            Self::Budget(budget) => Some(budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_budgets_map_both_ways() {
        for (effort, budget) in TABLE {
            assert_eq!(effort.budget(), budget);
            assert_eq!(Effort::from_budget(budget), effort);
            assert_eq!(Effort::parse(effort.as_str()), Some(effort));
        }
        assert_eq!(Effort::from_budget(1), Effort::Minimal);
        assert_eq!(Effort::from_budget(5_000), Effort::Medium);
        assert_eq!(Effort::from_budget(1_000_000), Effort::XHigh);
        assert_eq!(Reasoning::from_effort_name("none"), Some(Reasoning::Off));
        assert_eq!(Reasoning::Budget(2_000).effort(), Some(Effort::Low));
        assert_eq!(Reasoning::Effort(Effort::High).budget(), Some(32_768));
        assert_eq!(Reasoning::Adaptive.budget(), None);
    }
}
