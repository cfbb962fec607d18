//! What a fresh login still needs before it serves, done once by the
//! engine right after login or import: naming the account (GitHub's user
//! endpoint for Copilot, Google's userinfo) and finding the Code Assist
//! project (Gemini CLI, which may have to onboard and poll). A setup is a
//! chain of requests; each answer says whether another follows.

use std::time::Duration;

use subgate_http::OutboundRequest;

/// Which request of a setup an answer is to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    /// Copilot: `copilot_internal/user` (the GitHub login and plan).
    CopilotUser,
    /// Google: userinfo (the email).
    Userinfo,
    /// Code Assist: `loadCodeAssist`.
    LoadCodeAssist,
    /// Code Assist: `onboardUser`.
    Onboard,
    /// Code Assist: a poll of the onboarding operation.
    Operation,
    /// Kiro: `getUsageLimits` (the email and plan).
    KiroUsage,
}

/// One request of a setup.
#[derive(Debug)]
pub struct Setup {
    /// What to send.
    pub request: OutboundRequest,
    /// Which step it is, for reading the answer.
    pub step: SetupStep,
    /// How long to wait before sending it.
    pub wait: Duration,
}

impl Setup {
    pub(crate) fn new(request: OutboundRequest, step: SetupStep, wait: Duration) -> Self {
        Self {
            request,
            step,
            wait,
        }
    }
}
