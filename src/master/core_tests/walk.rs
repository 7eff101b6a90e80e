//! Random walks: thousands of seeded sequences of inputs (readiness, exits, timers,
//! commands, closed channels, signals, spawn failures, time passing), with the core's
//! invariants checked after every effect and every step. A failure names its seed and
//! the steps that led there, so it replays exactly.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// xorshift64*: a few lines, reproducible from a seed, and no dev-dependency for it.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// Which invariants to hold the core to; the lax set leaves out those the known bugs in
/// `bugs.rs` break.
#[derive(Clone, Copy)]
struct Rules {
    /// A worker gets one Stop at most (bug: Stop sent again).
    one_stop: bool,
    /// A worker whose channel closed never becomes Accepting (bug).
    no_accept_after_close: bool,
    /// A scaled-away slot goes once empty (bug).
    removed_slots_go: bool,
    /// A running slot always has a worker or a restart armed (bug: stop then start).
    running_slots_are_filled: bool,
    /// The apps' idea of the agent follows it out (bug: not when the master stopped it).
    apps_see_the_agent_go: bool,
}

const LAX: Rules = Rules {
    one_stop: false,
    no_accept_after_close: false,
    removed_slots_go: false,
    running_slots_are_filled: false,
    apps_see_the_agent_go: false,
};

const STRICT: Rules = Rules {
    one_stop: true,
    no_accept_after_close: true,
    removed_slots_go: true,
    running_slots_are_filled: true,
    apps_see_the_agent_go: true,
};

struct Walk {
    h: Harness,
    rng: Rng,
    rules: Rules,
    armed: Vec<Timer>,
    accepting: BTreeSet<WorkerId>,
    /// Asked to stop or killed.
    stopping: BTreeSet<WorkerId>,
    /// Got a Stop effect.
    stopped_once: BTreeSet<WorkerId>,
    channel_closed: BTreeSet<WorkerId>,
    /// Every restart token ever armed.
    tokens: BTreeSet<u64>,
    /// A Kill or a second stop signal was fed: stop order no longer applies.
    killing: bool,
    cluster_ready: u32,
    /// What each worker was last told by `cluster-pids`: the agent's pid for an app, the
    /// ready apps' pids for the agent.
    told: BTreeMap<WorkerId, Vec<u32>>,
    /// Commands carried out (not refused).
    commands: u64,
    log: Vec<String>,
}

impl Walk {
    fn new(seed: u64, rules: Rules) -> Walk {
        let mut rng = Rng::new(seed);
        let workers = 1 + rng.below(3);
        let agent = rng.below(3) > 0;
        let mut mode = || match rng.below(4) {
            0 => ReadyMode::Spawn,
            1 => ReadyMode::Delay(Duration::from_millis(50)),
            _ => ReadyMode::Message,
        };
        let (ready, agent_ready) = (mode(), Some(mode()));
        let settings = Settings {
            workers,
            ready,
            agent_ready,
            restart_limit: 1 + rng.below(4) as u32,
            ..Settings::default()
        };
        Walk {
            h: Harness::with(settings, agent),
            rng,
            rules,
            armed: Vec::new(),
            accepting: BTreeSet::new(),
            stopping: BTreeSet::new(),
            stopped_once: BTreeSet::new(),
            channel_closed: BTreeSet::new(),
            tokens: BTreeSet::new(),
            killing: false,
            cluster_ready: 0,
            commands: 0,
            told: BTreeMap::new(),
            log: vec![format!(
                "seed {seed}: {workers} app(s) ready on {ready:?}, agent {agent} on {agent_ready:?}"
            )],
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!("{what}\n  after:\n    {}", self.log.join("\n    "));
    }

    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what());
        }
    }

    /// Feeds `input`, answers spawns (one in ten fails), checks every effect.
    fn feed(&mut self, input: Input) {
        self.log.push(format!("{input:?}"));
        let stopping = matches!(self.h.core.phase(), ClusterPhase::Stopping { .. });
        if matches!(input, Input::Kill) || (stopping && matches!(input, Input::Signal(_))) {
            self.killing = true;
        }
        let fx = self.h.raw(input);
        self.absorb(fx);
    }

    fn absorb(&mut self, fx: Vec<Effect>) {
        let mut spawned = Vec::new();
        for e in &fx {
            self.effect(e);
            if let Effect::Spawn { worker, .. } = e {
                spawned.push(*worker);
            }
        }
        for w in spawned {
            let input = if self.rng.below(10) == 0 {
                Input::SpawnFailed {
                    worker: w,
                    error: Error::io("spawn", std::io::ErrorKind::NotFound.into()),
                }
            } else {
                self.h.next_pid += 1;
                Input::Spawned {
                    worker: w,
                    pid: self.h.next_pid,
                }
            };
            self.feed(input);
        }
        self.state();
    }

    fn effect(&mut self, e: &Effect) {
        let live = |w: &WorkerId| self.h.core.worker(*w).is_some();
        match e {
            Effect::Spawn { worker, slot, .. } => {
                self.check(live(worker), || format!("{e:?} of a worker not recorded"));
                let s = self.h.core.slots().find(|s| s.id == *slot);
                self.check(
                    s.is_some_and(|s| s.goal == Goal::Running && !s.parked),
                    || format!("{e:?} in {s:?}"),
                );
                self.check(
                    !matches!(self.h.core.phase(), ClusterPhase::Stopping { .. }),
                    || format!("{e:?} while stopping"),
                );
            }
            Effect::Accepting { worker, slot } => {
                self.check(live(worker), || format!("{e:?}: the worker is gone"));
                self.check(!self.stopping.contains(worker), || {
                    format!("{e:?}: the worker was asked to stop")
                });
                if self.rules.no_accept_after_close {
                    self.check(!self.channel_closed.contains(worker), || {
                        format!("{e:?}: its channel closed")
                    });
                }
                let w = self.h.core.worker(*worker).unwrap();
                self.check(w.phase == Phase::Ready && w.slot == *slot, || {
                    format!("{e:?} for {w:?}")
                });
                let s = self.h.core.slots().find(|s| s.id == *slot);
                self.check(s.is_some_and(|s| s.goal == Goal::Running), || {
                    format!("{e:?} in {s:?}")
                });
                self.accepting.insert(*worker);
            }
            Effect::NotAccepting { worker } => {
                self.accepting.remove(worker);
            }
            Effect::Stop { worker, .. } => {
                self.check(live(worker), || format!("{e:?}: the worker is gone"));
                if self.rules.one_stop {
                    self.check(!self.stopped_once.contains(worker), || {
                        format!("{e:?}: a second Stop")
                    });
                }
                self.check(!self.accepting.contains(worker), || {
                    format!("{e:?} with no NotAccepting before it")
                });
                let agent = self.h.core.worker(*worker).unwrap().role == Role::Agent;
                let graceful =
                    matches!(self.h.core.phase(), ClusterPhase::Stopping { .. }) && !self.killing;
                if agent && graceful {
                    let apps = self
                        .h
                        .core
                        .workers()
                        .filter(|w| w.role == Role::App)
                        .count();
                    self.check(apps == 0, || {
                        format!("{e:?}: the agent is asked to stop with {apps} app(s) left")
                    });
                }
                self.stopped_once.insert(*worker);
                self.stopping.insert(*worker);
            }
            Effect::Kill { worker } => {
                self.check(live(worker), || format!("{e:?}: the worker is gone"));
                self.check(!self.accepting.contains(worker), || {
                    format!("{e:?} with no NotAccepting before it")
                });
                self.stopping.insert(*worker);
            }
            Effect::Arm { timer, .. } => {
                if let Timer::RestartDue { token, .. } = timer {
                    self.check(self.h.core.phase() == ClusterPhase::Ready, || {
                        format!("{e:?} in {:?}", self.h.core.phase())
                    });
                    self.tokens.insert(*token);
                }
                self.armed.push(*timer);
            }
            Effect::Gone { worker } => {
                self.check(!live(worker), || format!("{e:?} of a live worker"));
                self.accepting.remove(worker);
            }
            Effect::ClusterReady(_) => {
                self.cluster_ready += 1;
                self.check(self.cluster_ready == 1, || "ClusterReady twice".into());
                self.check(self.h.core.failure.is_none(), || {
                    format!("{e:?} after a failed start")
                });
                self.check(self.h.core.phase() == ClusterPhase::Ready, || {
                    format!("{e:?} in {:?}", self.h.core.phase())
                });
            }
            Effect::Send(m) => {
                self.check(m.to.is_some(), || format!("{m:?} has no route"));
                if m.action == "cluster-pids" {
                    let pids: Vec<u32> = serde_json::from_value(m.data.clone()).unwrap();
                    let role = match m.to {
                        Some(Endpoint::Agent) => Role::Agent,
                        _ => Role::App,
                    };
                    let to: Vec<WorkerId> = self
                        .h
                        .core
                        .workers()
                        .filter(|w| w.role == role)
                        .filter(|w| m.receiver_pid.is_none() || w.pid == m.receiver_pid)
                        .map(|w| w.id)
                        .collect();
                    for w in to {
                        self.told.insert(w, pids.clone());
                    }
                }
                if let Some(pid) = m.receiver_pid {
                    let to = self.h.core.workers().find(|w| w.pid == Some(pid));
                    self.check(to.is_some_and(|w| w.role == Role::App), || {
                        format!("{m:?}: pid {pid} is no live app worker")
                    });
                }
            }
            Effect::Reload(event) => {
                // Effects are checked after the whole step: a reload may have started and
                // completed within it, so only its end is checked against the state.
                if matches!(
                    event,
                    ReloadEvent::Completed { .. } | ReloadEvent::Aborted { .. }
                ) {
                    let running = self.h.core.reload().is_some();
                    self.check(!running, || format!("{e:?} but a reload still runs"));
                }
            }
            Effect::CloseListener | Effect::Publish => {}
        }
    }

    /// The state after a step.
    fn state(&self) {
        let core = &self.h.core;
        // Every live worker sits in exactly one place of its slot, and every place holds
        // a live worker.
        let mut placed = BTreeSet::new();
        for s in core.slots() {
            for w in s.workers() {
                self.check(placed.insert(w), || format!("{w} twice in the slots"));
                self.check(core.worker(w).is_some_and(|x| x.slot == s.id), || {
                    format!("slot {} holds {w}, not a live worker of it", s.id)
                });
            }
            if self.rules.removed_slots_go {
                self.check(
                    s.goal != Goal::Removed || s.workers().next().is_some(),
                    || format!("slot {} is removed and empty, yet listed", s.id),
                );
            }
            if let Some(t) = s.restart_token {
                self.check(self.tokens.contains(&t), || {
                    format!("slot {} waits for restart token {t}, never armed", s.id)
                });
            }
            let serving = s.workers().filter(|w| self.accepting.contains(w)).count();
            self.check(serving <= 1, || {
                format!("slot {} has {serving} accepting workers", s.id)
            });
            if self.rules.running_slots_are_filled
                && core.phase() == ClusterPhase::Ready
                && s.goal == Goal::Running
                && !s.parked
            {
                self.check(s.current.is_some() || s.restart_token.is_some(), || {
                    format!(
                        "slot {} should run, has no worker and no restart: {s:?}",
                        s.id
                    )
                });
            }
        }
        for w in core.workers() {
            self.check(placed.contains(&w.id), || format!("{} is in no slot", w.id));
        }
        if core.phase() == ClusterPhase::Ready {
            self.told_right();
            // A ready app that serves its slot takes its connections.
            for w in core.workers().filter(|w| w.role == Role::App) {
                let serves = w.phase == Phase::Ready
                    && w.intent.is_none()
                    && !self.channel_closed.contains(&w.id)
                    && core.slots().any(|s| s.current == Some(w.id));
                self.check(!serves || self.accepting.contains(&w.id), || {
                    format!("{} serves slot {} but is not accepting", w.id, w.slot)
                });
            }
        }
        self.check(!core.done() || core.workers().next().is_none(), || {
            "done with live workers".into()
        });
        if core.phase() == ClusterPhase::Ready {
            self.check(core.failure.is_none(), || "ready, yet failed".into());
        }
    }

    /// While the cluster is up, every ready app knows the ready agent (or that there is
    /// none), and the ready agent knows the ready apps.
    fn told_right(&self) {
        let core = &self.h.core;
        let agents: Vec<&Worker> = core.workers().filter(|w| w.role == Role::Agent).collect();
        let ready_agent = core
            .slots()
            .find(|s| s.id == AGENT_SLOT)
            .and_then(|s| s.current)
            .and_then(|id| core.worker(id))
            .filter(|w| w.phase == Phase::Ready);
        let ready_apps: Vec<u32> = core
            .workers()
            .filter(|w| w.role == Role::App && w.phase == Phase::Ready)
            .filter_map(|w| w.pid)
            .collect();
        for app in core
            .workers()
            .filter(|w| w.role == Role::App && w.phase == Phase::Ready)
        {
            let told = self.told.get(&app.id).cloned().unwrap_or_default();
            let right = match (ready_agent, told.as_slice()) {
                (Some(a), _) => told == vec![a.pid.unwrap()],
                (None, []) => true,
                // A stopping agent still lives and reads its channel.
                (None, [p]) => {
                    !self.rules.apps_see_the_agent_go || agents.iter().any(|a| a.pid == Some(*p))
                }
                (None, _) => false,
            };
            self.check(right, || {
                format!(
                    "{} believes the agent is {told:?}; ready agent {:?}",
                    app.id,
                    ready_agent.map(|a| a.pid)
                )
            });
        }
        if let Some(a) = ready_agent {
            let told = self.told.get(&a.id).cloned().unwrap_or_default();
            self.check(told == ready_apps, || {
                format!("the agent believes the apps are {told:?}, not {ready_apps:?}")
            });
        }
    }

    fn live(&self) -> Vec<WorkerId> {
        self.h.core.workers().map(|w| w.id).collect()
    }

    fn step(&mut self) {
        // Most walks should get past the start: there, readiness comes first.
        let starting = self.h.core.phase() == ClusterPhase::Starting;
        let roll = if starting && self.rng.below(10) > 0 {
            0
        } else {
            self.rng.below(20)
        };
        match roll {
            0..=4 => {
                let starting: Vec<WorkerId> = self
                    .h
                    .core
                    .workers()
                    .filter(|w| w.pid.is_some())
                    .map(|w| w.id)
                    .collect();
                if let Some(w) = self.rng.pick(&starting) {
                    self.feed(Input::Ready { worker: w });
                }
            }
            5..=7 => {
                let live = self.live();
                if let Some(w) = self.rng.pick(&live) {
                    let exit = match self.rng.below(3) {
                        0 => Exit {
                            code: Some(0),
                            signal: None,
                        },
                        1 => Exit {
                            code: Some(1),
                            signal: None,
                        },
                        _ => Exit {
                            code: None,
                            signal: Some(libc::SIGKILL),
                        },
                    };
                    self.feed(Input::Exited { worker: w, exit });
                }
            }
            8..=10 => {
                if !self.armed.is_empty() {
                    let i = self.rng.below(self.armed.len());
                    let t = self.armed.swap_remove(i);
                    self.feed(Input::Timer(t));
                }
            }
            11..=14 => {
                let max = self.h.core.slots().map(|s| s.id).max().unwrap_or(0) + 1;
                let slot = self.rng.below(max as usize + 1) as u32;
                let cmd = match self.rng.below(5) {
                    0 => Command::Restart { slot },
                    1 => Command::Stop { slot },
                    2 => Command::Start { slot },
                    3 => Command::Reload {
                        batch: 1 + self.rng.below(2),
                        surge: [None, Some(1), Some(2)][self.rng.below(3)],
                    },
                    _ => Command::Scale {
                        workers: 1 + self.rng.below(4),
                    },
                };
                self.log.push(format!("{cmd:?}"));
                match self.h.core.command(self.h.now(), cmd) {
                    Ok(fx) => {
                        self.commands += 1;
                        self.absorb(fx);
                    }
                    Err(e) => self.log.push(format!("  refused: {e}")),
                }
            }
            15 => {
                let live = self.live();
                if let Some(w) = self.rng.pick(&live) {
                    let abuse = self.rng.below(2) == 0;
                    if !abuse {
                        self.channel_closed.insert(w);
                    }
                    self.feed(Input::ChannelClosed { worker: w, abuse });
                }
            }
            16..=18 => {
                let ms = self.rng.below(3000) as u64;
                self.h.advance(Duration::from_millis(ms));
                self.log.push(format!("+{ms} ms"));
            }
            // Rare, so that most of a walk runs with the cluster up.
            _ if self.rng.below(10) > 0 => {}
            _ => match self.rng.below(4) {
                0 => self.feed(Input::Kill),
                1 => self.feed(Input::Signal("SIGTERM")),
                _ => self.feed(Input::Shutdown),
            },
        }
    }

    /// Stops the cluster and lets every worker exit: the walk ends done, spawning nothing.
    fn finish(&mut self) {
        self.feed(Input::Shutdown);
        for _ in 0..100 {
            if self.h.core.done() {
                return;
            }
            let live = self.live();
            if live.is_empty() {
                // Stopping with nothing live must be done.
                self.fail("stopping, nothing live, yet not done".into());
            }
            for w in live {
                self.feed(Input::Exited {
                    worker: w,
                    exit: Exit {
                        code: Some(0),
                        signal: None,
                    },
                });
            }
        }
        self.fail("never done".into());
    }
}

fn walk(seeds: std::ops::Range<u64>, steps: usize, rules: Rules) {
    let n = seeds.end - seeds.start;
    let (mut ready, mut commands) = (0, 0);
    for seed in seeds {
        let mut w = Walk::new(seed, rules);
        w.feed(Input::Start);
        let mut was_ready = false;
        for _ in 0..steps {
            w.step();
            was_ready |= w.h.core.phase() == ClusterPhase::Ready;
        }
        ready += u64::from(was_ready);
        commands += w.commands;
        w.finish();
    }
    // A walk that never gets the cluster up, or never commands it, proves little.
    assert!(
        ready * 2 > n,
        "only {ready} of {n} walks got the cluster ready"
    );
    assert!(
        commands > n,
        "only {commands} commands carried out in {n} walks"
    );
}

#[test]
fn random_walks_keep_the_invariants_the_core_holds_today() {
    walk(0..2000, 120, LAX);
}

#[test]
fn random_walks_keep_every_invariant() {
    walk(0..2000, 120, STRICT);
}
