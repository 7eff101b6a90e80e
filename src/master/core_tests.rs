//! The core's decisions, driven by hand: a fake clock, fake pids, and the effects read back.
//! No process, socket or sleep: each test feeds inputs and asserts on what the core asks for.

use super::*;
use crate::protocol::Message;

#[path = "core_tests/accepting.rs"]
mod accepting;
#[path = "core_tests/bookkeeping.rs"]
mod bookkeeping;
#[path = "core_tests/egg.rs"]
mod egg;
#[path = "core_tests/recycle.rs"]
mod recycle;
#[path = "core_tests/regressions.rs"]
mod regressions;
#[path = "core_tests/reload.rs"]
mod reload;
#[path = "core_tests/replace.rs"]
mod replace;
#[path = "core_tests/restart.rs"]
mod restart;
#[path = "core_tests/scale.rs"]
mod scale;
#[path = "core_tests/shutdown.rs"]
mod shutdown;
#[path = "core_tests/slots.rs"]
mod slots;
#[path = "core_tests/start.rs"]
mod start;
#[path = "core_tests/surge.rs"]
mod surge;
#[path = "core_tests/walk.rs"]
mod walk;

/// A Core on a fake clock; every `Spawn` is answered with `Spawned` and a fresh pid.
struct Harness {
    core: Core,
    base: Instant,
    at: Duration,
    next_pid: u32,
}

impl Harness {
    fn new(workers: usize, agent: bool) -> Harness {
        Harness::with(
            Settings {
                workers,
                ..Settings::default()
            },
            agent,
        )
    }

    fn with(mut settings: Settings, agent: bool) -> Harness {
        if agent {
            settings.agent = Some(vec!["agent".into()]);
        }
        let info = ClusterInfo {
            port: Some(7001),
            address: "127.0.0.1".into(),
            workers: settings.workers,
            sticky: true,
            sticky_mode: Some("master handoff"),
        };
        let core = Core::new(settings, agent, info, Rc::new(Metrics::default()));
        Harness {
            core,
            base: Instant::now(),
            at: Duration::ZERO,
            next_pid: 100,
        }
    }

    fn now(&self) -> Instant {
        self.base + self.at
    }

    fn advance(&mut self, d: Duration) {
        self.at += d;
    }

    /// Feeds `input` and answers every spawn it leads to; returns every effect, in order.
    fn input(&mut self, input: Input) -> Vec<Effect> {
        let fx = self.core.handle(self.now(), input);
        self.answer_spawns(fx)
    }

    /// Feeds `input` as is: spawns are left unanswered.
    fn raw(&mut self, input: Input) -> Vec<Effect> {
        self.core.handle(self.now(), input)
    }

    fn answer_spawns(&mut self, fx: Vec<Effect>) -> Vec<Effect> {
        let mut out = Vec::new();
        for e in fx {
            let spawned = match e {
                Effect::Spawn { worker, .. } => Some(worker),
                _ => None,
            };
            out.push(e);
            if let Some(worker) = spawned {
                self.next_pid += 1;
                let pid = self.next_pid;
                let more = self.core.handle(self.now(), Input::Spawned { worker, pid });
                out.extend(self.answer_spawns(more));
            }
        }
        out
    }

    fn command(&mut self, cmd: Command) -> Vec<Effect> {
        let fx = self
            .core
            .command(self.now(), cmd)
            .unwrap_or_else(|e| panic!("{cmd:?} refused: {e}"));
        self.answer_spawns(fx)
    }

    fn ready(&mut self, worker: WorkerId) -> Vec<Effect> {
        self.input(Input::Ready { worker })
    }

    fn exit(&mut self, worker: WorkerId, code: i32) -> Vec<Effect> {
        self.input(Input::Exited {
            worker,
            exit: Exit {
                code: Some(code),
                signal: None,
            },
        })
    }

    fn killed(&mut self, worker: WorkerId) -> Vec<Effect> {
        self.input(Input::Exited {
            worker,
            exit: Exit {
                code: None,
                signal: Some(libc::SIGKILL),
            },
        })
    }

    fn fire(&mut self, timer: Timer) -> Vec<Effect> {
        self.input(Input::Timer(timer))
    }

    /// The worker serving `slot` (panics when there is none).
    fn current(&self, slot: u32) -> WorkerId {
        self.slot(slot)
            .current
            .unwrap_or_else(|| panic!("slot {slot} has no current worker"))
    }

    fn slot(&self, slot: u32) -> &Slot {
        self.core
            .slots()
            .find(|s| s.id == slot)
            .unwrap_or_else(|| panic!("no slot {slot}"))
    }

    fn has_slot(&self, slot: u32) -> bool {
        self.core.slots().any(|s| s.id == slot)
    }

    fn pid(&self, worker: WorkerId) -> u32 {
        self.core
            .worker(worker)
            .and_then(|w| w.pid)
            .expect("a spawned worker")
    }

    /// Starts the cluster and makes every worker ready: the agent first when there is one.
    fn start_ready(&mut self) -> Vec<Effect> {
        let mut fx = self.input(Input::Start);
        if let Some((agent, _, _)) = spawns(&fx).into_iter().find(|s| s.1 == Role::Agent) {
            fx.extend(self.ready(agent));
        }
        for (app, _, _) in spawns(&fx)
            .into_iter()
            .filter(|s| s.1 == Role::App)
            .collect::<Vec<_>>()
        {
            fx.extend(self.ready(app));
        }
        assert_eq!(
            self.core.phase(),
            ClusterPhase::Ready,
            "the cluster started"
        );
        fx
    }

    /// Crashes the worker serving `slot` (code 1); returns the restart timer it armed.
    fn crash(&mut self, slot: u32) -> (Vec<Effect>, Option<Timer>) {
        let w = self.current(slot);
        let fx = self.exit(w, 1);
        let due = restart_due(&fx);
        (fx, due)
    }
}

fn spawns(fx: &[Effect]) -> Vec<(WorkerId, Role, u32)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Spawn {
                worker, role, slot, ..
            } => Some((*worker, *role, *slot)),
            _ => None,
        })
        .collect()
}

fn spawned_ids(fx: &[Effect]) -> Vec<WorkerId> {
    spawns(fx).into_iter().map(|s| s.0).collect()
}

fn stops(fx: &[Effect]) -> Vec<WorkerId> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Stop { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect()
}

fn kills(fx: &[Effect]) -> Vec<WorkerId> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Kill { worker } => Some(*worker),
            _ => None,
        })
        .collect()
}

fn accepting(fx: &[Effect]) -> Vec<WorkerId> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Accepting { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect()
}

fn not_accepting(fx: &[Effect]) -> Vec<WorkerId> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::NotAccepting { worker } => Some(*worker),
            _ => None,
        })
        .collect()
}

fn timers(fx: &[Effect]) -> Vec<Timer> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Arm { timer, .. } => Some(*timer),
            _ => None,
        })
        .collect()
}

fn restart_due(fx: &[Effect]) -> Option<Timer> {
    timers(fx)
        .into_iter()
        .find(|t| matches!(t, Timer::RestartDue { .. }))
}

fn sent<'a>(fx: &'a [Effect], action: &str) -> Vec<&'a Message> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(m) if m.action == action => Some(m),
            _ => None,
        })
        .collect()
}

fn sent_to(fx: &[Effect], action: &str, to: Endpoint) -> usize {
    sent(fx, action).iter().filter(|m| m.to == Some(to)).count()
}

fn has(fx: &[Effect], f: impl Fn(&Effect) -> bool) -> bool {
    fx.iter().any(f)
}

/// Where the effect matching `f` sits in `fx`.
fn position(fx: &[Effect], f: impl Fn(&Effect) -> bool) -> usize {
    fx.iter().position(f).expect("the effect is there")
}

fn ready_timeout_of(fx: &[Effect], w: WorkerId) -> Timer {
    timers(fx)
        .into_iter()
        .find(|t| *t == Timer::ReadyTimeout(w))
        .unwrap_or_else(|| panic!("no ready timeout armed for {w}"))
}
