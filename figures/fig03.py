"""Fig. 3: who dominates -- the dot product (ANN view) vs the spiking domain.

Two neurons of equal L2 norm (1) and different L4 norm: ``w_A`` at 45° (L4 = 2^-1/4 = 0.841)
and ``w_B`` at 10° (L4 = 0.985). Inputs ``lambda = R (cos phi, sin phi)``, ``tau = 1``,
threshold ``v_th = 2`` (above both means, so crossing is fluctuation-driven). As ``phi`` sweeps
the quadrant:

* dot product: A dominates where ``lambda·w_A > lambda·w_B``, i.e. ``phi > 27.5°`` at every R;
* race from rest: ``P(A first) = P(T_A < T_B) + P(T_A = T_B)/2`` of the first-passage times of
  exact event-driven LIF neurons fed the *same* input spikes (common random numbers,
  :func:`validation.simulators.lif_event`; ties happen because both jump at the same
  events; trials where neither fires by ``t_run`` count as ties). The boundary angle is
  found by Brent's method on ``P(A first) - 1/2`` with the input streams fixed (CRN across
  the angles tried), repeated on independent seeds; mean +- SE over the replicates;
* stationary exceedance: ``P(V_A > v_th)`` vs ``P(V_B > v_th)`` of the free membranes, exact
  (``ShotNoise.sf``; boundary by Brent's method) and simulated (binomial SE).

A map over the input plane repeats the race (coarse grid) and both boundaries over R.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from tqdm.auto import tqdm

from l4theory.plot import dominance_map
from l4theory.theory import ShotNoise, l4_norm
from validation.simulators import free_membrane, lif_event

from .style import COLORS, figure, styled

NAME = "fig03"
TITLE = "Dominance: dot product vs spiking race and exceedance"

CONFIGS = {
    "quick": {"version": 1, "seed": 303, "tau": 1.0, "v_th": 2.0, "R": 1.0,
              "angle_A_deg": 45.0, "angle_B_deg": 10.0, "n_phi": 19,
              "race_trials": 10_000, "t_run": 60.0, "n_rep": 6, "rep_trials": 20_000,
              "exc_trials": 20_000, "t_stat": 30.0, "xtol_deg": 0.01,
              "map_R": [0.75, 1.0, 1.5, 2.0, 3.0, 4.0], "map_n_phi": 10, "map_trials": 2_000,
              "map_boundary_trials": 10_000},
    "full": {"version": 1, "seed": 303, "tau": 1.0, "v_th": 2.0, "R": 1.0,
             "angle_A_deg": 45.0, "angle_B_deg": 10.0, "n_phi": 37,
             "race_trials": 40_000, "t_run": 60.0, "n_rep": 10, "rep_trials": 50_000,
             "exc_trials": 100_000, "t_stat": 30.0, "xtol_deg": 0.01,
             "map_R": [0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0], "map_n_phi": 19,
             "map_trials": 5_000, "map_boundary_trials": 20_000},
}


def weights(cfg):
    """Unit weight vectors of A and B, shape (2, 2)."""
    a, b = np.radians(cfg["angle_A_deg"]), np.radians(cfg["angle_B_deg"])
    return np.array([[np.cos(a), np.sin(a)], [np.cos(b), np.sin(b)]])


def _rates(R, phi):
    return R * np.array([np.cos(phi), np.sin(phi)])


def _t_run(cfg, R):
    return cfg["t_run"] / min(R, 1.0) ** 2  # slower crossings at weak input


def race(cfg, R, phi, n_trials, seed):
    """``(P(A first), SE, tie fraction)`` of one race at input ``R, phi`` (CRN across phi)."""
    _, fpt = lif_event(_rates(R, phi), weights(cfg), cfg["tau"], [cfg["v_th"]], _t_run(cfg, R),
                       n_trials, seed)
    ta, tb = fpt[:, 0, 0], fpt[:, 1, 0]
    score = (ta < tb) + 0.5 * (ta == tb)
    return score.mean(), score.std(ddof=1) / np.sqrt(n_trials), np.mean(ta == tb)


_LO, _HI = np.radians(5.0), np.radians(85.0)


def race_boundary(cfg, R, n_trials, seed, lo=_LO, hi=_HI):
    """Angle where ``P(A first) = 1/2`` for one seed (Brent's method, fixed input streams)."""
    def f(phi):
        return race(cfg, R, phi, n_trials, seed)[0] - 0.5

    return optimize.brentq(f, lo, hi, xtol=np.radians(cfg["xtol_deg"]))


def exceedance_exact(cfg, R, phi):
    """Exact stationary ``P(V > v_th)`` of A and B, shape (2,)."""
    lam = _rates(R, phi)
    return np.array([float(ShotNoise(lam, w, cfg["tau"]).sf(cfg["v_th"])) for w in weights(cfg)])


def exceedance_boundary(cfg, R):
    """Angle where the exact stationary exceedance probabilities of A and B are equal."""
    def f(phi):
        p = exceedance_exact(cfg, R, phi)
        return p[0] - p[1]

    return optimize.brentq(f, np.radians(5.0), np.radians(85.0), xtol=1e-7)


def compute(cfg) -> dict:
    """Dot products, race and exceedance curves over phi, boundaries with SE, and the map."""
    W = weights(cfg)
    R = cfg["R"]
    phi = np.linspace(0.0, np.pi / 2, cfg["n_phi"])
    lam = R * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    a, b = np.radians(cfg["angle_A_deg"]), np.radians(cfg["angle_B_deg"])
    out = {"phi": phi, "dot": lam @ W.T, "phi_dot": 0.5 * (a + b), "w": W, "l4": l4_norm(W),
           "l2": np.linalg.norm(W, axis=1), "tau": cfg["tau"], "v_th": cfg["v_th"], "R": R,
           "race_trials": cfg["race_trials"], "exc_trials": cfg["exc_trials"],
           "n_rep": cfg["n_rep"], "rep_trials": cfg["rep_trials"], "t_run": cfg["t_run"]}
    p_race, se_race, ties = np.zeros(phi.size), np.zeros(phi.size), np.zeros(phi.size)
    exact, p_exc = np.zeros((phi.size, 2)), np.zeros((phi.size, 2))
    for k, ph in enumerate(tqdm(phi, desc="fig03 sweep phi", leave=False)):
        p_race[k], se_race[k], ties[k] = race(cfg, R, ph, cfg["race_trials"], cfg["seed"])
        exact[k] = exceedance_exact(cfg, R, ph)
        v = free_membrane(lam[k], W, cfg["tau"], [cfg["t_stat"]], cfg["exc_trials"],
                          cfg["seed"] + 1 + k)[:, :, 0]
        p_exc[k] = (v > cfg["v_th"]).mean(axis=0)
    out.update(p_race=p_race, se_race=se_race, ties=ties, exc_exact=exact, exc_sim=p_exc,
               exc_se=np.sqrt(np.maximum(p_exc * (1 - p_exc), 1e-12) / cfg["exc_trials"]))
    reps = [race_boundary(cfg, R, cfg["rep_trials"], cfg["seed"] + 1000 + r)
            for r in tqdm(range(cfg["n_rep"]), desc="fig03 race boundary", leave=False)]
    reps = np.array(reps)
    out["phi_race_reps"] = reps
    out["phi_race"] = reps.mean()
    out["phi_race_se"] = reps.std(ddof=1) / np.sqrt(reps.size)
    out["phi_exc"] = exceedance_boundary(cfg, R)
    # map over the input plane
    map_R = np.array(cfg["map_R"], dtype=float)
    map_phi = np.linspace(0.0, np.pi / 2, cfg["map_n_phi"])
    grid = np.zeros((map_R.size, map_phi.size))
    b_race, b_exc = np.zeros(map_R.size), np.zeros(map_R.size)
    for i, r in enumerate(tqdm(map_R, desc="fig03 input-plane map", leave=False)):
        for j, ph in enumerate(map_phi):
            grid[i, j] = race(cfg, r, ph, cfg["map_trials"], cfg["seed"] + 2000 + i)[0]
        b_race[i] = race_boundary(cfg, r, cfg["map_boundary_trials"], cfg["seed"] + 3000 + i)
        b_exc[i] = exceedance_boundary(cfg, r)
    out.update(map_R=map_R, map_phi=map_phi, map_p_race=grid, map_phi_race=b_race,
               map_phi_exc=b_exc)
    return out


@styled
def plot(data):
    """(a) dot products, (b) race, (c) stationary exceedance over phi, (d) input-plane map.

    Panel (d) is :func:`l4theory.plot.dominance_map`.
    """
    fig, axes = figure(2, 2, width=7.4, height=6.0)
    (ax1, ax2), (ax3, ax4) = axes
    deg = np.degrees(data["phi"])
    cA, cB = COLORS["A"], COLORS["B"]
    pd, pr, pe = (np.degrees(float(data[k])) for k in ("phi_dot", "phi_race", "phi_exc"))
    pr_se = np.degrees(float(data["phi_race_se"]))
    l4 = data["l4"]

    def marks(ax):
        ax.axvline(pd, color="k", ls="--", lw=0.8, label=f"dot-product boundary {pd:.1f}°")
        ax.axvspan(pr - 2 * pr_se, pr + 2 * pr_se, color="0.6", alpha=0.4, lw=0)
        ax.axvline(pr, color="0.3", lw=0.8, label=f"race boundary {pr:.2f}° ± {pr_se:.2f}°")
        ax.axvline(pe, color="0.3", ls=":", lw=1.0, label=f"exceedance boundary {pe:.2f}°")
        ax.set_xticks(np.arange(0, 91, 15))
        ax.set_xlabel("input angle φ (deg)")

    ax1.plot(deg, data["dot"][:, 0], color=cA, label=f"A: w at 45°, L4 = {l4[0]:.3f}")
    ax1.plot(deg, data["dot"][:, 1], color=cB, label=f"B: w at 10°, L4 = {l4[1]:.3f}")
    marks(ax1)
    ax1.set_ylabel("mean drive λ·w (= mean V / tau)")
    ax1.set_title("(a) ANN view: dot products")
    ax1.legend(loc="lower center", fontsize=6.5)

    ax2.axhline(0.5, color="k", lw=0.6)
    p, se = data["p_race"], data["se_race"]
    ax2.fill_between(deg, p - 2 * se, p + 2 * se, color=cA, alpha=0.25, lw=0)
    ax2.plot(deg, p, "o-", color=cA, ms=2.5, label="P(A first) ± 2 SE (CRN)")
    ax2.plot(deg, data["ties"], color="0.5", lw=0.8, label="P(tie)")
    marks(ax2)
    ax2.set_ylabel(f"P(A reaches v_th = {float(data['v_th']):g} first)")
    ax2.set_title("(b) race to threshold from rest")
    ax2.legend(loc="upper left", fontsize=6.0)

    for k, (lab, c) in enumerate((("A", cA), ("B", cB))):
        ax3.plot(deg, data["exc_exact"][:, k], color=c, label=f"{lab} exact (ShotNoise.sf)")
        ax3.errorbar(deg, data["exc_sim"][:, k], yerr=2 * data["exc_se"][:, k], fmt="o",
                     color=c, mfc="white", ms=3, label=f"{lab} simulated ± 2 SE")
    marks(ax3)
    ax3.set_ylabel(f"stationary P(V > {float(data['v_th']):g})")
    ax3.set_title("(c) stationary exceedance")
    ax3.legend(loc="upper right", fontsize=6.0)

    dominance_map(data["w"], data["map_R"], data["map_phi"], data["map_p_race"], ax=ax4,
                  boundaries={"race P = 1/2": data["map_phi_race"],
                              "equal exceedance": data["map_phi_exc"]})
    ax4.set_title("(d) input plane: red = B first, blue = A first")
    return fig


def caption(data) -> str:
    """Figure caption with the parameters."""
    l4 = data["l4"]
    return (f"Fig. 3. Two neurons of equal L2 norm 1 and different L4 norm: A with w at 45° "
            f"(L4 = {l4[0]:.3f}) and B with w at 10° (L4 = {l4[1]:.3f}); input rates "
            f"λ = R (cos φ, sin φ), R = {float(data['R']):g}, tau = {float(data['tau']):g}, "
            f"threshold {float(data['v_th']):g}, hard reset, V(0) = 0. (a) Dot products (ANN view). "
            f"(b) Probability that A reaches threshold first, both neurons fed the same input "
            f"spikes (exact event-driven simulation, {int(data['race_trials']):,} trials per angle, "
            f"ties counted 1/2), 2 SE band. (c) Stationary P(V > {float(data['v_th']):g}) of the free "
            f"membranes: exact (ShotNoise.sf) and simulated ({int(data['exc_trials']):,} samples, "
            f"2 SE). Vertical lines: boundaries; the race boundary is the mean ± SE of "
            f"{int(data['n_rep'])} independent Brent root-findings on P(A first) − 1/2 "
            f"({int(data['rep_trials']):,} trials each, common random numbers across angles), grey "
            f"band ± 2 SE. (d) The race over the input plane (points: P(A first)) with the three "
            f"boundaries at R = {', '.join(f'{r:g}' for r in data['map_R'])}.")


def summary(data) -> str:
    """One sentence on what the figure shows, numbers from the data."""
    pd, pr, pe = (np.degrees(float(data[k])) for k in ("phi_dot", "phi_race", "phi_exc"))
    se = np.degrees(float(data["phi_race_se"]))
    big = np.degrees(data["map_phi_race"][-1])
    return (f"The dot product hands the input to A (the lower-L4 neuron) from φ = {pd:.1f}°, but in "
            f"the spiking domain the higher-L4 neuron B keeps it longer: B wins the race to "
            f"threshold up to φ = {pr:.2f}° ± {se:.2f}° ({(pr - pd) / se:.0f} SE beyond the "
            f"dot-product boundary) and exceeds threshold more often at stationarity up to "
            f"{pe:.2f}° (exact); the shift shrinks as the drive grows (race boundary {big:.1f}° at "
            f"R = {float(data['map_R'][-1]):g}), where the means dominate.")
