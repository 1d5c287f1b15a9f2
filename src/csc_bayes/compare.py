"""Model comparison: PSIS-LOO and grouped K-fold cross-validation that leaves out authorities.

Two estimates of expected log predictive density (elpd) per model:

- **PSIS-LOO** (``arviz_stats.loo``): leave one authority-year out, estimated from the full fit
  by Pareto-smoothed importance sampling. Observations whose Pareto k exceeds the sample-size
  threshold (``min(1 - 1/log10(S), 0.7)``) are listed by authority and year: their LOO term is
  unreliable.
- **Grouped K-fold** (``kfold=K``): authorities are split into K folds; each fold's authorities
  are removed from the panel, the model is refitted (through the batch engine), and each
  held-out authority's observations are predicted as a NEW group: for every posterior draw s,
  M new LA effects u ~ N(0, sigma_la^(s)) are drawn and

      elpd_j = log( 1/(S M) sum_{s,m} prod_t p(y_jt | theta^(s), u^(s,m)) )

  (its years are predicted jointly, as one unseen authority). A model with an LA trend draws a
  new trend w ~ N(0, sigma_la_trend^(s)) with u; one with an AR(1) LA-year term draws a new
  path over the authority's years (the stationary law, then each year given the earlier ones);
  a year the fit has not seen gets a year effect drawn by the year term's own law (a random
  walk conditions on the fitted years). The draws come from the one linear predictor
  (:mod:`csc_bayes.linear_predictor`). This is the honest test of predicting an authority the
  model has never seen.

Models are compared on the authority-years every model fitted (a model with more covariates may
drop rows with missing values). Differences are against the best model with standard errors
se = sqrt(n var(d_i)) over observations (LOO) or authorities (K-fold).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from csc_bayes.batch import Task, run_tasks
from csc_bayes.errors import AnswerError, TaskFailedError
from csc_bayes.fits import Fit, load_fit
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.ordinal import require_count_fit
from csc_bayes.posterior import reader
from csc_bayes.spec import with_derived_columns
from csc_bayes.terms import Rows
from csc_bayes.terms.censoring import row_bounds
from csc_bayes.terms.family import count_log_pmf  # noqa: F401  (public here since 0.1)

#: new LA effects drawn per posterior draw in the K-fold predictive density
NEW_GROUP_DRAWS = 20
#: how K-fold refits run: one saved fit per fold, or one compiled model per shape
KFOLD_ENGINES = ("fit", "compiled")


@dataclass
class Comparison:
    """Comparison of fitted models.

    Attributes:
        table: one row per model, best first: ``elpd_loo``, ``se_loo``, ``p_loo``,
            ``elpd_loo_diff`` and ``se_loo_diff`` (vs the best by LOO), ``n_high_k``; with K-fold
            also ``elpd_kfold``, ``se_kfold``, ``elpd_kfold_diff``, ``se_kfold_diff``.
        pareto_k: observations with Pareto k above the threshold: model, la_code, la_name,
            year, pareto_k, threshold.
        pointwise: model -> DataFrame of pointwise elpd (``loo`` by authority-year; ``kfold`` by
            authority).
        info: rows compared, folds, seeds.
    """

    table: pd.DataFrame
    pareto_k: pd.DataFrame
    pointwise: dict[str, dict[str, pd.Series]]
    info: dict[str, Any]

    def plot(self, *, ax: Any = None) -> Any:
        """elpd of each model with +-2 SE of its difference from the best; returns the Figure."""
        import matplotlib.pyplot as plt

        kinds = [k for k in ("loo", "kfold") if f"elpd_{k}" in self.table]
        if ax is None:
            fig, axes = plt.subplots(
                1,
                len(kinds),
                figsize=(4.5 * len(kinds), 0.6 * len(self.table) + 1.5),
                squeeze=False,
            )
            axes = list(axes.flat)
        else:
            fig, axes = ax.figure, [ax]
            kinds = kinds[-1:]
        for a, kind in zip(axes, kinds, strict=True):
            t = self.table.sort_values(f"elpd_{kind}")
            y = np.arange(len(t))
            a.errorbar(t[f"elpd_{kind}"], y, xerr=2 * t[f"se_{kind}_diff"], fmt="o", capsize=3)
            a.set_yticks(y, t["model"])
            a.axvline(t[f"elpd_{kind}"].max(), color="0.6", lw=0.8, ls="--")
            label = "PSIS-LOO" if kind == "loo" else f"grouped {self.info.get('kfold')}-fold CV"
            a.set_xlabel(f"elpd ({label}); bars: 2 SE of difference from best")
        fig.tight_layout()
        return fig

    def save(self, folder: str | Path) -> Path:
        """Write table.csv, table.json, pareto_k.csv, info.json and compare.png into ``folder``."""
        import matplotlib.pyplot as plt

        from csc_bayes.excess import to_safe_csv
        from csc_bayes.fits import write_text_atomic
        from csc_bayes.plots import save_figure

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "table.csv", self.table.to_csv(index=False))
        records = json.loads(self.table.to_json(orient="records"))
        write_text_atomic(folder / "table.json", json.dumps(records, indent=2) + "\n")
        to_safe_csv(self.pareto_k, folder / "pareto_k.csv")  # holds authority names
        write_text_atomic(folder / "info.json", json.dumps(self.info, indent=2) + "\n")
        fig = self.plot()
        save_figure(fig, folder / "compare.png", dpi=110)
        plt.close(fig)
        return folder


# ====================================================================== observations
def observation_index(fit: Fit) -> pd.DataFrame:
    """The fitted rows of a fit in ``obs`` order: la_code, year (from the saved constant data)."""
    const = fit.idata["constant_data"]
    post = fit.idata["posterior"]
    la = post["la"].values.astype(str)[const["la_idx"].values]
    year = post["year"].values.astype(int)[const["year_idx"].values]
    return pd.DataFrame({"la_code": la, "year": year})


def _common_rows(fits: dict[str, Fit]) -> pd.MultiIndex:
    sets = [pd.MultiIndex.from_frame(observation_index(f)) for f in fits.values()]
    common = sets[0]
    for s in sets[1:]:
        common = common.intersection(s)
    if common.empty:
        raise AnswerError("the fits share no authority-year: they cannot be compared")
    return common.sort_values()


def _summary(pointwise: dict[str, pd.Series], kind: str) -> pd.DataFrame:
    """elpd, SE, and differences from the best model with SEs, from aligned pointwise elpd."""
    totals = {m: float(p.sum()) for m, p in pointwise.items()}
    best = max(totals, key=totals.get)
    rows = []
    for model, p in pointwise.items():
        n = len(p)
        diff = (pointwise[best] - p).to_numpy()
        rows.append(
            {
                "model": model,
                f"elpd_{kind}": totals[model],
                f"se_{kind}": float(math.sqrt(n * p.var(ddof=1))) if n > 1 else float("nan"),
                f"elpd_{kind}_diff": totals[best] - totals[model],
                f"se_{kind}_diff": float(math.sqrt(n * diff.var(ddof=1))) if n > 1 else 0.0,
            }
        )
    return pd.DataFrame(rows)


# ====================================================================== PSIS-LOO
def loo_pointwise(fit: Fit, name: str) -> tuple[pd.DataFrame, float]:
    """PSIS-LOO per observation: la_code, year, elpd_loo, p_loo, pareto_k; and the k threshold."""
    import arviz_stats

    loo = arviz_stats.loo(fit.idata, pointwise=True)
    log_lik = fit.idata["log_likelihood"]["y"].stack(sample=("chain", "draw"))
    lppd = special.logsumexp(log_lik.transpose("obs", "sample").to_numpy(), axis=1) - math.log(
        log_lik.sizes["sample"]
    )
    elpd = loo.elpd_i.to_numpy()
    table = observation_index(fit).assign(
        elpd_loo=elpd, p_loo=lppd - elpd, pareto_k=loo.pareto_k.to_numpy(), model=name
    )
    return table, float(loo.good_k)


# ====================================================================== grouped K-fold
def authority_folds(la_codes: list[str], k: int, *, seed: int) -> dict[str, int]:
    """Assign authorities to k folds of (nearly) equal size, at random but fixed by ``seed``."""
    if not 2 <= k <= len(la_codes):
        raise AnswerError(
            f"kfold must be between 2 and the number of authorities ({len(la_codes)}), got {k}"
        )
    order = np.random.default_rng(seed).permutation(sorted(la_codes))
    return {str(code): i % k for i, code in enumerate(order)}


def heldout_lpd(
    fit: Fit, rows: pd.DataFrame, *, outcome: str, seed: int, m: int = NEW_GROUP_DRAWS
) -> pd.Series:
    """log predictive density of each held-out authority's rows, as a new group (see module).

    ``rows`` are panel rows (la_code, region, year, exposure, covariates, outcome) of
    authorities the fit did not see. Each authority is evaluated ``m`` times as a fresh new
    authority (its own intercept, slope, trend and AR(1) path drawn from their laws by the one
    linear predictor); region and year effects the fit has not seen are drawn once and shared.
    """
    require_count_fit(fit, "grouped K-fold CV (use LOO for an ordinal model)")
    post = reader(fit)
    rows = with_derived_columns(
        rows.reset_index(drop=True), post.covariates, post.spec.years, scales=post.scales
    )
    codes = rows["la_code"].astype(str).to_numpy()
    n = len(rows)
    replicas = np.repeat(np.arange(m), n)
    inputs = Rows(
        la_code=np.char.add(np.tile(codes, m), np.char.add("#", replicas.astype(str))),
        region=np.tile(rows["region"].astype(str).to_numpy(), m),
        year=np.tile(rows["year"].to_numpy(dtype=int), m),
        X=np.tile(post.standardise(rows[post.covariates].to_numpy(dtype=float)), (m, 1)),
        log_exposure=np.tile(np.log(rows[post.spec.exposure].to_numpy(dtype=float)), m),
    )
    eta = linear_predictor(post, inputs, new=seed).eta.reshape(post.n_draws, m, n)
    family = next(t for t in post.terms if t.name == "family")
    phi = family.phi(post)
    # a held-out row censored to a known range scores the probability of its range
    same = outcome == post.spec.outcome
    lower, upper = row_bounds(post.spec, rows) if same else (None, None)
    y = rows[outcome].to_numpy(dtype=float, na_value=np.nan)
    phi = None if phi is None else phi[:, None, None]
    ll = family.log_density(y, np.exp(eta), phi, lower, upper)
    out = {}
    for code in pd.unique(codes):
        joint = ll[:, :, codes == code].sum(axis=-1)  # (sample, m): its years jointly
        out[code] = float(special.logsumexp(joint) - math.log(joint.size))
    return pd.Series(out, name="elpd_kfold")


def flat_draws(posterior: Any, name: str) -> np.ndarray:
    """Draws of one posterior variable as a numpy array (chain * draw, ...), chain-major."""
    values = np.asarray(posterior[name].transpose("chain", "draw", ...).values)
    return values.reshape(-1, *values.shape[2:])


def kfold_task(
    *,
    spec: Any,
    train: pd.DataFrame,
    heldout: pd.DataFrame,
    fits_dir: str,
    seed: int,
    refit: str = "on_change",
) -> dict[str, float]:
    """One (model, fold) on a worker: fit without the held-out authorities, score them."""
    import gc

    import jax

    from csc_bayes.fitting import fit

    result = fit(spec, data=train, out=fits_dir, refit=refit, progress=False)
    jax.clear_caches()  # the fit's programs are never reused in this process (a new model each)
    gc.collect()
    lpd = heldout_lpd(result, heldout, outcome=spec.outcome, seed=seed)
    return {str(k): float(v) for k, v in lpd.items()}


def kfold_compiled_task(
    *,
    spec: Any,
    panel: pd.DataFrame,
    folds: dict[str, int],
    fold_ids: list[int],
    common: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    """Several folds of one model on one worker, the model compiled once (``engine="compiled"``).

    The model is built once on every fitted row of ``panel`` (:mod:`csc_bayes.compiled`); fold f
    gives the rows of its authorities weight 0, so the fit knows nothing of their counts, and
    scores them with :func:`heldout_lpd` as new groups, exactly as the refit path does. Every
    fold reuses one compiled sampler. Returns ``{"elpd": {la_code: elpd}, "seconds": {fold:
    seconds}, "peak_rss_mib": ...}``.
    """
    from csc_bayes.compiled import aligned_outcome, compile_model, peak_rss_mib
    from csc_bayes.model import build_model

    built = build_model(spec, panel)
    model = compile_model(built)
    y = aligned_outcome(built, panel, spec.outcome)
    fitted_la = built.data["la_code"].astype(str).to_numpy()
    s = spec.sampler
    elpd: dict[str, float] = {}
    seconds: dict[str, float] = {}
    try:
        for fold in fold_ids:
            out_las = sorted(c for c, i in folds.items() if i == fold)
            weights = (~np.isin(fitted_la, out_las)).astype(float)
            draws = model.sample(
                y,
                weights,
                draws=s.draws,
                tune=s.tune,
                chains=s.chains,
                seed=s.seed,
                target_accept=s.target_accept,
                max_treedepth=s.max_treedepth,
            )
            fold_fit = model.to_fit(draws, y=y, spec=spec, panel=panel)
            is_out = panel["la_code"].astype(str).isin(out_las)
            heldout = panel[is_out].merge(common, on=["la_code", "year"], how="inner")
            lpd = heldout_lpd(fold_fit, heldout, outcome=spec.outcome, seed=seed * 1000 + fold)
            elpd.update({str(k): float(v) for k, v in lpd.items()})
            seconds[str(fold)] = draws.seconds
    finally:
        model.close()
    return {"elpd": elpd, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def _fold_spec(spec: Any, fold: int, k: int) -> Any:
    from dataclasses import replace

    return replace(spec, name=f"{spec.name}_cv{k}-{fold}")


# ====================================================================== the comparison
def compare_fits(
    fits: list[Fit | str | Path],
    *,
    kfold: int | None = None,
    seed: int = 0,
    fits_dir: str | Path = "fits/cv",
    scheduler: str | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
    engine: str = "fit",
    fold_batches: int | None = None,
) -> Comparison:
    """Compare fitted models by PSIS-LOO and, with ``kfold=K``, grouped K-fold CV.

    Args:
        fits: Fit objects or saved run / model folders.
        kfold: number of folds of authorities (None: LOO only). Each fold refits every model
            with its own sampler settings, on the batch engine.
        seed: fixes the fold assignment and the new-group Monte Carlo draws.
        fits_dir: where the fold fits are saved (a re-run reuses them).
        scheduler, n_workers, client: where the refits run (see :func:`csc_bayes.batch.run_tasks`).
        engine: ``"fit"`` refits each fold with :func:`csc_bayes.fit` (saved under
            ``fits_dir``, so a re-run resumes); ``"compiled"`` builds each model once on all its
            rows, gives a fold's held-out rows weight 0 and samples every fold with one compiled
            program (:mod:`csc_bayes.compiled`; nothing is saved; see docs/scale.md for how its
            model differs: priors and standardisation from all fitted rows).
        fold_batches: ``engine="compiled"``: tasks per model, each compiling once and running
            its share of the folds (default: one per worker, at most K).
    """
    if engine not in KFOLD_ENGINES:
        raise AnswerError(f"engine must be one of {KFOLD_ENGINES}, got {engine!r}")
    loaded = [f if isinstance(f, Fit) else load_fit(f) for f in fits]
    if len(loaded) < 1:
        raise AnswerError("give at least one fit")
    named: dict[str, Fit] = {}
    for f in loaded:
        name = f.spec.name
        if name in named:
            name = f"{name}@{f.path.name if f.path else len(named)}"
        named[name] = f
    outcomes = {f.spec.outcome for f in named.values()}
    if len(outcomes) > 1:
        raise AnswerError(
            f"fits predict different outcomes {sorted(outcomes)}; compare like with like"
        )
    common = _common_rows(named)

    loo_tables, pareto_rows = {}, []
    for name, f in named.items():
        table, threshold = loo_pointwise(f, name)
        table = table.set_index(["la_code", "year"]).loc[common]
        loo_tables[name] = table
        high = table[table["pareto_k"] > threshold].reset_index()
        names = f.panel.drop_duplicates("la_code").set_index("la_code")["la_name"]
        for row in high.itertuples():
            pareto_rows.append(
                {
                    "model": name,
                    "la_code": row.la_code,
                    "la_name": names.get(row.la_code, ""),
                    "year": int(row.year),
                    "pareto_k": float(row.pareto_k),
                    "threshold": threshold,
                }
            )
    pointwise = {"loo": {m: t["elpd_loo"] for m, t in loo_tables.items()}}
    table = _summary(pointwise["loo"], "loo")
    table["p_loo"] = [float(loo_tables[m]["p_loo"].sum()) for m in table["model"]]
    table["n_high_k"] = [sum(r["model"] == m for r in pareto_rows) for m in table["model"]]
    info: dict[str, Any] = {
        "models": list(named),
        "runs": {m: str(f.path) for m, f in named.items()},
        "n_obs_compared": len(common),
        "n_authorities_compared": int(common.get_level_values(0).nunique()),
        "synthetic": any(f.synthetic for f in named.values()),
    }

    if kfold is not None:
        kf = _kfold(
            named,
            common,
            k=kfold,
            seed=seed,
            fits_dir=Path(fits_dir),
            scheduler=scheduler,
            n_workers=n_workers,
            client=client,
            progress=progress,
            engine=engine,
            fold_batches=fold_batches,
        )
        pointwise["kfold"] = kf
        table = table.merge(_summary(kf, "kfold"), on="model")
        info.update(
            {"kfold": kfold, "seed": seed, "new_group_draws": NEW_GROUP_DRAWS, "engine": engine}
        )
    order = "elpd_kfold" if kfold is not None else "elpd_loo"
    table = table.sort_values(order, ascending=False).reset_index(drop=True)
    pareto = pd.DataFrame(
        pareto_rows, columns=["model", "la_code", "la_name", "year", "pareto_k", "threshold"]
    )
    return Comparison(table, pareto, pointwise, info)


def _kfold(
    named: dict[str, Fit],
    common: pd.MultiIndex,
    *,
    k: int,
    seed: int,
    fits_dir: Path,
    engine: str = "fit",
    fold_batches: int | None = None,
    **where: Any,
) -> dict[str, pd.Series]:
    """Per-authority held-out elpd of every model, from K refits each on the batch engine."""
    la_codes = sorted(common.get_level_values(0).unique())
    folds = authority_folds(la_codes, k, seed=seed)
    common_frame = common.to_frame(index=False)
    if engine == "compiled":
        return _kfold_compiled(
            named, folds, common_frame, la_codes, k=k, seed=seed, fold_batches=fold_batches, **where
        )
    tasks = []
    for name, f in named.items():
        # derived columns from the whole panel: year_dev_<x> is a difference from the mean over
        # every authority of the year, held-out ones included (the others are per authority)
        panel = with_derived_columns(f.panel, f.spec.covariates, f.spec.years)
        for fold in range(k):
            out_las = [c for c, i in folds.items() if i == fold]
            is_out = panel["la_code"].astype(str).isin(out_las)
            heldout = panel[is_out].merge(common_frame, on=["la_code", "year"], how="inner")
            tasks.append(
                Task(
                    key=f"{name}-fold{fold}",
                    func=kfold_task,
                    kwargs={
                        "spec": _fold_spec(f.spec, fold, k),
                        "train": panel[~is_out].reset_index(drop=True),
                        "heldout": heldout,
                        "fits_dir": str(fits_dir),
                        "seed": seed * 1000 + fold,
                    },
                    lock_dir=fits_dir / ".locks",
                )
            )
    outcomes = run_tasks(tasks, description="CV fits", **where)
    return _elpd_by_model(outcomes, named, la_codes, "K-fold refits", "-fold", lambda v: v)


def _kfold_compiled(
    named: dict[str, Fit],
    folds: dict[str, int],
    common: pd.DataFrame,
    la_codes: list[str],
    *,
    k: int,
    seed: int,
    fold_batches: int | None,
    **where: Any,
) -> dict[str, pd.Series]:
    """K-fold with each model compiled once per task; folds split into ``fold_batches`` tasks."""
    batches = min(k, fold_batches or _workers(where))
    tasks = []
    for name, f in named.items():
        for b in range(batches):
            tasks.append(
                Task(
                    key=f"{name}-folds{b}",
                    func=kfold_compiled_task,
                    kwargs={
                        "spec": f.spec,
                        "panel": f.panel,
                        "folds": folds,
                        "fold_ids": list(range(b, k, batches)),
                        "common": common,
                        "seed": seed,
                    },
                )
            )
    outcomes = run_tasks(tasks, description="CV folds (compiled)", **where)
    return _elpd_by_model(
        outcomes, named, la_codes, "compiled K-fold tasks", "-folds", lambda v: v["elpd"]
    )


def _elpd_by_model(
    outcomes: list[Any],
    named: dict[str, Fit],
    la_codes: list[str],
    what: str,
    separator: str,
    elpd_of: Callable[[Any], dict[str, float]],
) -> dict[str, pd.Series]:
    """Each model's held-out elpd per authority from its K-fold tasks (keyed
    ``<model><separator><n>``); any failed task raises :class:`TaskFailedError` naming them."""
    failed = [f"{o.key}: {o.error}" for o in outcomes if o.status == "failed"]
    if failed:
        raise TaskFailedError(
            f"{len(failed)} of {len(outcomes)} {what} failed: "
            + "; ".join(f.splitlines()[0] for f in failed)
        )
    out: dict[str, pd.Series] = {}
    for name in named:
        values: dict[str, float] = {}
        for o in outcomes:
            if o.key.rsplit(separator, 1)[0] == name:
                values.update(elpd_of(o.value))
        out[name] = pd.Series(values).reindex(la_codes)
    return out


def _workers(where: dict[str, Any]) -> int:
    """Workers the tasks will run on: the client's, ``n_workers``, else the CPU count."""
    import os

    client = where.get("client")
    if client is not None:
        return max(1, len(client.scheduler_info().get("workers", {})))
    return int(where.get("n_workers") or os.cpu_count() or 1)
