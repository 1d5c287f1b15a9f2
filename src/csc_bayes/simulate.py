"""Synthetic LA x year panels with known truth: the embedded demo data and the test data.

Numpy only, so it can serve simulation-based calibration independently of the PyMC model.
Outcomes follow the posterior contract in ARCHITECTURE.md exactly, on the covariates'
published units:

    eta = log(population) + intercept + sum_k beta_per_unit[k] * (x_k - centre_k)
          + la_effect[la] + region_effect[region] + year_effect[year]
    y ~ NegativeBinomial(mean exp(eta), alpha = phi),  Var(y) = mu + mu^2 / phi

drawn as the gamma-Poisson mixture lambda ~ Gamma(phi, mu / phi), y ~ Poisson(lambda).
``imd`` is in every panel but its true effect is exactly 0 (``beta_per_unit["imd"] == 0.0``):
it is a near-duplicate of ``idaci``, which is what a model with both should discover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from csc_bayes.authorities import authorities_in_year
from csc_bayes.data.schema import (
    COVARIATES,
    EXPOSURE,
    FLAGGED,
    OUTCOMES,
    REGIONS,
    MissingReason,
    bounds_columns,
    missing_column,
    validate_panel,
)

#: Authorities left out by default: too small to model (DfE mostly suppresses them).
TINY_AUTHORITIES = ("201", "420")  # City of London, Isles of Scilly

#: DfE suppresses counts of 1-5 children; below this a simulated count is set missing.
SUPPRESS_BELOW = 6

#: True parameters per outcome. ``rate_per_10k`` is exp(intercept) * 10,000, the rate of an
#: authority at the covariate centre with all random effects zero. Effects are per unit of the
#: covariate as published (idaci and ethnic share are fractions, spend is pounds per child).
TRUE_PARAMETERS: dict[str, dict[str, Any]] = {
    "cin": {
        "rate_per_10k": 330.0,
        "beta_per_unit": {"idaci": 4.0, "ethnic_minority_share": -0.4, "spend_per_child": 3e-4},
        "sigma_la": 0.25, "sigma_region": 0.10, "sigma_year": 0.05, "phi": 60.0,
    },
    "cpp": {
        "rate_per_10k": 42.0,
        "beta_per_unit": {"idaci": 5.0, "ethnic_minority_share": -0.6, "spend_per_child": 2e-4},
        "sigma_la": 0.30, "sigma_region": 0.10, "sigma_year": 0.05, "phi": 40.0,
    },
    "cla": {
        "rate_per_10k": 70.0,
        "beta_per_unit": {"idaci": 5.5, "ethnic_minority_share": -0.8, "spend_per_child": 4e-4},
        "sigma_la": 0.28, "sigma_region": 0.10, "sigma_year": 0.04, "phi": 80.0,
    },
    "s47": {
        "rate_per_10k": 160.0,
        "beta_per_unit": {"idaci": 4.5, "ethnic_minority_share": -0.3, "spend_per_child": 3e-4},
        "sigma_la": 0.32, "sigma_region": 0.10, "sigma_year": 0.06, "phi": 35.0,
    },
    "referrals": {
        "rate_per_10k": 550.0,
        "beta_per_unit": {"idaci": 3.0, "ethnic_minority_share": -0.3, "spend_per_child": 2e-4},
        "sigma_la": 0.27, "sigma_region": 0.10, "sigma_year": 0.05, "phi": 50.0,
    },
}  # fmt: skip

#: Correlation of the LA effects of any two outcomes (an authority high on CPP tends to be high
#: on CLA too). Each outcome's LA effect is still marginally N(0, sigma_la).
LA_EFFECT_CORRELATION = 0.5

# Regional deprivation shifts (in SDs of the latent deprivation score); roughly the IoD pattern.
_REGION_DEPRIVATION = {
    "North East": 0.8, "North West": 0.6, "Yorkshire and The Humber": 0.5,
    "East Midlands": 0.0, "West Midlands": 0.4, "East of England": -0.5,
    "London": 0.4, "South East": -0.8, "South West": -0.5,
}  # fmt: skip


@dataclass(frozen=True)
class SimulatedPanel:
    """A synthetic panel and the parameters that generated it.

    ``truth[outcome]`` holds ``intercept``, ``centre``, ``beta_per_unit``, ``sigma_la``,
    ``sigma_region``, ``sigma_year``, ``phi``, ``la_effect`` (Series by la_code),
    ``region_effect`` (by region), ``year_effect`` (by year, forecast year included) and
    ``log_rate`` (by (la_code, year): the true eta - log(population), forecast year included).
    """

    panel: pd.DataFrame
    truth: dict[str, dict[str, Any]]


def default_authorities(year: int) -> pd.DataFrame:
    """Authorities reporting in ``year``, minus City of London and the Isles of Scilly."""
    alive = authorities_in_year(year)
    return alive.loc[~alive["la_code"].isin(TINY_AUTHORITIES)].reset_index(drop=True)


def _simulate_covariates(
    authorities: pd.DataFrame, years: list[int], rng: np.random.Generator
) -> pd.DataFrame:
    """Population and correlated covariates for every authority and year (rounded as published).

    A latent deprivation score d ~ N(region shift, 1) drives idaci = exp(log 0.16 + 0.3 d)
    (clipped to 0.05-0.35), imd = 4 + 110 idaci + N(0, 2) (8-45), ethnic minority share
    (logit-normal, far higher in London and in deprived areas) and spend per child
    (600 exp(0.15 d) per LA, +2% a year, 4% LA-year noise, 300-1,500). Population is
    log-normal (median 55k, 20k-280k) with a per-LA growth rate of about 0.3% a year.
    """
    n = len(authorities)
    region = authorities["region"].astype(str).to_numpy()
    dep = np.array([_REGION_DEPRIVATION[r] for r in region]) + rng.normal(0.0, 1.0, n)
    idaci = np.clip(np.exp(np.log(0.16) + 0.3 * dep), 0.05, 0.35)
    imd = np.clip(4.0 + 110.0 * idaci + rng.normal(0.0, 2.0, n), 8.0, 45.0)
    london = region == "London"
    logit_share = np.where(london, -0.3, -2.4) + 0.45 * dep + rng.normal(0.0, 0.5, n)
    share = np.clip(1.0 / (1.0 + np.exp(-logit_share)), 0.03, 0.75)
    spend_level = 600.0 * np.exp(0.15 * dep + rng.normal(0.0, 0.2, n))
    pop0 = np.clip(np.exp(np.log(55_000) + rng.normal(0.0, 0.6, n)), 20_000, 280_000)
    growth = rng.normal(0.003, 0.004, n)

    rows = []
    for t, year in enumerate(years):
        spend = spend_level * 1.02**t * np.exp(rng.normal(0.0, 0.04, n))
        rows.append(
            pd.DataFrame(
                {
                    "la_code": authorities["la_code"].astype(str).to_numpy(),
                    "ons_code": authorities["ons_code"].astype(str).to_numpy(),
                    "la_name": authorities["la_name"].astype(str).to_numpy(),
                    "region": region,
                    "year": year,
                    EXPOSURE: np.round(pop0 * np.exp(growth * t)).astype(np.int64),
                    "idaci": np.round(idaci, 3),
                    "imd": np.round(imd, 2),
                    "ethnic_minority_share": np.round(share, 3),
                    "spend_per_child": np.round(np.clip(spend, 300.0, 1_500.0), 0),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _add_child_poverty(panel: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``low_income_rate``, a time-varying context column like the official one (children in
    relative low income per child under 16; England about 0.19): per authority 0.18 +
    (idaci - 0.16) + N(0, 0.03), +0.4 points a year, N(0, 0.01) a year (clipped to
    0.01-0.6). It enters no outcome. Drawn with its own generator, so every other column is as
    without it."""
    rng = np.random.default_rng([seed, 13])
    codes = panel["la_code"].astype(str)
    first = codes.drop_duplicates()
    level = pd.Series(rng.normal(0.0, 0.03, len(first)), index=first.to_numpy())
    base = 0.18 + (panel["idaci"].to_numpy(dtype=float) - 0.16) + codes.map(level)
    trend = 0.004 * (panel["year"] - panel["year"].min())
    rate = np.clip(base + trend + rng.normal(0.0, 0.01, len(panel)), 0.01, 0.6)
    panel["low_income_rate"] = pd.array(np.round(rate, 3), dtype="Float64")
    panel["low_income_rate_missing"] = pd.array([pd.NA] * len(panel), dtype="string")
    return panel


#: truth of the synthetic ILACS judgements (:func:`_add_inspections`): a cumulative logit
#: P(grade <= k) = logistic(c_k - eta) with eta = sum_k beta[k] z_k + la_effect, z the
#: standardised covariates over the authority-years 2017-2024 (and their product), so a
#: positive beta means worse grades
TRUE_ILACS: dict[str, Any] = {
    "cutpoints": (-1.6, 0.4, 2.0),
    "beta": {"lag_spend_per_cin_1": -0.3, "idaci": 0.5, "interaction": 0.2},
    "sigma_la": 0.5,
}


def _add_inspections(panel: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``spend_per_cin`` and synthetic ILACS judgements, like the official context columns.

    ``spend_per_cin = spend_per_child * population / cin`` (missing with cin's reason).
    Inspections: each authority's first is published in reporting year 2019, 2020 or 2021
    (a uniform day of that April-March year); the next follows 3 years after a grade 1-2, 2
    after a 3 and 1 after a 4, while the year is in the panel. Each grade is drawn from
    :data:`TRUE_ILACS` with the previous year's spend per child in need. ``ilacs_overall``
    (1-4) is the judgement in force at 31 March, with ``ilacs_overall_label``,
    ``ilacs_overall_published`` (ISO date) and ``ilacs_overall_missing`` (``no_source`` before
    2018, ``not_yet_inspected`` before the first). Drawn with its own generator, so every
    other column is as without it.
    """
    from scipy import special

    from csc_bayes.data.inspections import LABELS as ILACS_LABELS

    rng = np.random.default_rng([seed, 31])
    cin = panel["cin"].astype("Float64")
    spend = (
        panel["spend_per_child"].astype("Float64") * panel[EXPOSURE].astype("Float64") / cin
    ).round(0)
    usable = cin.notna() & cin.gt(0)
    panel["spend_per_cin"] = spend.where(usable, pd.NA).astype("Float64")
    panel["spend_per_cin_missing"] = (
        panel[missing_column("cin")].astype("string").where(~usable, pd.NA).astype("string")
    )
    panel.loc[~usable & panel["spend_per_cin_missing"].isna(), "spend_per_cin_missing"] = (
        MissingReason.NOT_APPLICABLE.value
    )

    codes = panel["la_code"].astype(str)
    key = pd.MultiIndex.from_arrays([codes, panel["year"].astype(int)])
    lag_spend = pd.Series(panel["spend_per_cin"].to_numpy(dtype=float, na_value=np.nan), key)
    idaci = pd.Series(panel["idaci"].to_numpy(dtype=float), key)
    window = (key.get_level_values(1) >= 2017) & (key.get_level_values(1) <= 2024)
    z_spend_scale = (np.nanmean(lag_spend[window]), np.nanstd(lag_spend[window]))
    z_dep_scale = (np.nanmean(idaci[window]), np.nanstd(idaci[window]))
    last = int(panel["year"].max())
    beta = TRUE_ILACS["beta"]
    cut = np.asarray(TRUE_ILACS["cutpoints"])
    inspections: dict[str, list[tuple[pd.Timestamp, int]]] = {}
    for code in codes.drop_duplicates():
        la_effect = rng.normal(0.0, TRUE_ILACS["sigma_la"])
        year = int(rng.integers(2019, 2022))
        found = []
        while year <= last:
            before = lag_spend.get((code, year - 1), np.nan)
            spend_z = (before - z_spend_scale[0]) / z_spend_scale[1]
            dep_z = (idaci.get((code, year), np.nan) - z_dep_scale[0]) / z_dep_scale[1]
            if not (np.isfinite(spend_z) and np.isfinite(dep_z)):
                break
            eta = (
                beta["lag_spend_per_cin_1"] * spend_z
                + beta["idaci"] * dep_z
                + beta["interaction"] * spend_z * dep_z
                + la_effect
            )
            grade = 1 + int((rng.uniform() > special.expit(cut - eta)).sum())
            day = pd.Timestamp(year=year - 1, month=4, day=1) + pd.Timedelta(
                days=int(rng.integers(0, 365))
            )
            found.append((day, grade))
            year += {1: 3, 2: 3, 3: 2, 4: 1}[grade]
        inspections[code] = found
    values, labels, published, reasons = [], [], [], []
    for code, year in zip(codes, panel["year"].astype(int), strict=True):
        cutoff = pd.Timestamp(year=year, month=3, day=31)
        in_force = [(d, g) for d, g in inspections[code] if d <= cutoff]
        if year < 2018 or not in_force:
            values.append(pd.NA)
            labels.append(pd.NA)
            published.append(pd.NA)
            reasons.append(
                MissingReason.NO_SOURCE.value
                if year < 2018
                else MissingReason.NOT_YET_INSPECTED.value
            )
            continue
        day, grade = in_force[-1]
        values.append(grade)
        labels.append(ILACS_LABELS[grade])
        published.append(day.date().isoformat())
        reasons.append(pd.NA)
    panel["ilacs_overall"] = pd.array(values, dtype="Int64")
    panel["ilacs_overall_missing"] = pd.array(reasons, dtype="string")
    panel["ilacs_overall_label"] = pd.array(labels, dtype="string")
    panel["ilacs_overall_published"] = pd.array(published, dtype="string")
    return panel


#: the first panel year of the children's social work workforce census (September 2017)
WORKFORCE_FIRST_YEAR = 2018
#: synthetic workforce columns: (England level, SD of an authority's own level, change a year,
#: SD of a year's noise, lowest, highest, decimals)
_WORKFORCE = {
    "sw_turnover_rate": (0.16, 0.04, 0.0, 0.03, 0.02, 0.5, 3),
    "sw_agency_rate": (0.16, 0.08, 0.005, 0.03, 0.0, 0.6, 3),
    "sw_vacancy_rate": (0.17, 0.07, 0.005, 0.03, 0.0, 0.6, 3),
    "sw_caseload": (17.0, 2.5, 0.0, 1.5, 8.0, 35.0, 1),
}


def _add_workforce(panel: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The four workforce columns of the real panel (turnover, agency share and vacancy rate as
    fractions, caseload per FTE), like the official ones: per column, England level + the
    authority's own N(0, sd) level + a national change a year + N(0, sd) a year, clipped
    (:data:`_WORKFORCE`); from 2018 only, earlier years missing as ``no_source``. They enter no
    outcome. Drawn with their own generator, so every other column is as without them."""
    rng = np.random.default_rng([seed, 17])
    codes = panel["la_code"].astype(str)
    first = codes.drop_duplicates().to_numpy()
    years = panel["year"].to_numpy(dtype=int)
    covered = years >= WORKFORCE_FIRST_YEAR
    for column, (level, la_sd, trend, year_sd, low, high, decimals) in _WORKFORCE.items():
        own = pd.Series(rng.normal(0.0, la_sd, len(first)), index=first)
        value = level + codes.map(own).to_numpy() + trend * (years - WORKFORCE_FIRST_YEAR)
        value = np.round(np.clip(value + rng.normal(0.0, year_sd, len(panel)), low, high), decimals)
        panel[column] = pd.array(np.where(covered, value, np.nan), dtype="Float64")
        reason = np.where(covered, None, MissingReason.NO_SOURCE.value)
        panel[missing_column(column)] = pd.array(reason, dtype="string")
    return panel


#: the synthetic share of the children looked after during a year who cease by its end, per
#: authority: Uniform(0.3, 0.5) (England's is about 0.3: 33,000 ceased of ~115,000 in 2024)
CEASE_SHARE_RANGE = (0.3, 0.5)


def _add_cla_flows(panel: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``cla_started`` and ``cla_ceased``, flows consistent with the simulated stock: per
    authority a share ceasing h_j ~ Uniform(:data:`CEASE_SHARE_RANGE`); each year
    ``C_t ~ Binomial(Y_(t-1), h_j)`` and ``S_t = Y_t - Y_(t-1) + C_t`` (if that is negative,
    C_t grows by the shortfall and S_t = 0), so ``Y_t = Y_(t-1) + S_t - C_t`` holds exactly.
    The first year takes Y_(t-1) = Y_t. Years without a stock (the forecast year) have no
    flows either, with the stock's reason. Drawn with its own generator, so every other column
    is as without it. Call it before suppressing small counts (the flows use the true stock)."""
    rng = np.random.default_rng([seed, 23])
    codes = panel["la_code"].astype(str)
    first = codes.drop_duplicates()
    share = pd.Series(rng.uniform(*CEASE_SHARE_RANGE, len(first)), index=first.to_numpy())
    started = np.full(len(panel), -1, dtype=np.int64)
    ceased = np.full(len(panel), -1, dtype=np.int64)
    stock = panel["cla"]
    for code, rows in panel.groupby(codes, sort=False).groups.items():
        order = panel.loc[rows, "year"].sort_values().index
        before = None
        for i in order:
            if pd.isna(stock.loc[i]):
                before = None
                continue
            now = int(stock.loc[i])
            prev = now if before is None else before
            c = int(rng.binomial(prev, share[code]))
            s = now - prev + c
            if s < 0:
                c, s = c - s, 0
            pos = panel.index.get_loc(i)
            started[pos], ceased[pos] = s, c
            before = now
    for name, values in (("cla_started", started), ("cla_ceased", ceased)):
        known = values >= 0
        panel[name] = pd.array(np.where(known, values, 0), dtype="Int64")
        panel.loc[~known, name] = pd.NA
        panel[missing_column(name)] = pd.array(
            np.where(known, None, MissingReason.NOT_YET_PUBLISHED.value), dtype="string"
        )
    return panel


def true_log_rate(panel: pd.DataFrame, *, params: dict[str, Any]) -> pd.Series:
    """The true eta - log(population) of each panel row, indexed by (la_code, year).

    log_rate = intercept + sum_k beta_per_unit[k] (x_k - centre_k) + la_effect[la]
               + region_effect[region] + year_effect[year]
    """
    log_rate = np.full(len(panel), float(params["intercept"]))
    for cov, beta in params["beta_per_unit"].items():
        x = panel[cov].astype("float64").to_numpy()
        log_rate += beta * (x - params["centre"][cov])
    log_rate += params["la_effect"].reindex(panel["la_code"].astype(str)).to_numpy()
    log_rate += params["region_effect"].reindex(panel["region"].astype(str)).to_numpy()
    log_rate += params["year_effect"].reindex(panel["year"].astype(int)).to_numpy()
    if np.isnan(log_rate).any():
        raise ValueError("params lack an effect for some authority, region or year of the panel")
    index = pd.MultiIndex.from_arrays(
        [panel["la_code"].astype(str).to_numpy(), panel["year"].astype(int).to_numpy()],
        names=["la_code", "year"],
    )
    return pd.Series(log_rate, index=index, name="log_rate")


def simulate_outcome(
    panel: pd.DataFrame, *, params: dict[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """One negative-binomial draw per panel row (int64, unsuppressed).

    mu = population * exp(log_rate) (see :func:`true_log_rate`); lambda ~ Gamma(phi, mu / phi);
    y ~ Poisson(lambda). ``params`` is one outcome's entry of :attr:`SimulatedPanel.truth`.
    """
    mu = panel[EXPOSURE].astype("float64").to_numpy() * np.exp(
        true_log_rate(panel, params=params).to_numpy()
    )
    phi = float(params["phi"])
    return rng.poisson(rng.gamma(shape=phi, scale=mu / phi)).astype(np.int64)


def suppress_small_counts(
    panel: pd.DataFrame, *, below: int = SUPPRESS_BELOW, known_range: bool = False
) -> pd.DataFrame:
    """Set outcome counts of 1 to ``below - 1`` to <NA> with reason ``suppressed``, as DfE does.

    Zero is published as zero (it discloses no child), so it is kept. With ``known_range`` the
    panel also carries what is known of each suppressed count, ``<outcome>_lower = 1`` and
    ``<outcome>_upper = below - 1`` (:func:`csc_bayes.data.schema.bounds_columns`), so that a
    model can enter it as an interval-censored count; DfE's own markers publish no such range
    (``docs/data.md``).
    """
    out = panel.copy()
    for col in OUTCOMES:
        small = (out[col].gt(0) & out[col].lt(below)).fillna(False).astype(bool)
        out.loc[small, col] = pd.NA
        out.loc[small, missing_column(col)] = MissingReason.SUPPRESSED.value
        if known_range:
            lo_col, hi_col = bounds_columns(col)
            out[lo_col] = pd.array(np.where(small, 1, 0), dtype="Int64")
            out[hi_col] = pd.array(np.where(small, below - 1, 0), dtype="Int64")
            out.loc[~small, [lo_col, hi_col]] = pd.NA
    return out


def simulate_panel(
    *,
    first_year: int = 2015,
    last_year: int = 2024,
    seed: int = 0,
    authorities: pd.DataFrame | None = None,
    forecast_year: bool = True,
    suppress_below: int = SUPPRESS_BELOW,
    known_range: bool = False,
) -> SimulatedPanel:
    """A schema-valid synthetic panel for ``first_year``..``last_year`` (+ a forecast row).

    ``authorities`` (columns la_code, ons_code, la_name, region) defaults to the reference
    authorities existing in ``last_year`` minus City of London and the Isles of Scilly.
    Truth per outcome: ``centre[k]`` is the mean of covariate k over all simulated LA-years
    excluding the forecast year; ``intercept`` is the log-rate (per child) at the centre with
    every random effect zero, log(rate_per_10k / 10,000) of :data:`TRUE_PARAMETERS`. Random
    effects are drawn la_effect ~ N(0, sigma_la) (correlated across outcomes),
    region_effect ~ N(0, sigma_region), year_effect ~ N(0, sigma_year) for every year including
    the forecast year. The forecast year (last_year + 1) has population and covariates, its
    outcomes missing as ``not_yet_published``. Counts of 1 to ``suppress_below - 1`` are
    suppressed (:func:`suppress_small_counts`, with their range when ``known_range``). Same
    seed, same panel.
    """
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    rng = np.random.default_rng(seed)
    las = default_authorities(last_year) if authorities is None else authorities
    unknown = sorted(set(las["region"].astype(str)) - set(REGIONS))
    if unknown:
        raise ValueError(f"authorities have unknown region(s) {unknown}")
    years = list(range(first_year, last_year + 1 + int(forecast_year)))
    panel = _simulate_covariates(las, years, rng)
    observed = panel["year"].le(last_year).to_numpy()
    centre = {c: float(panel.loc[observed, c].mean()) for c in COVARIATES}

    la_codes = las["la_code"].astype(str).to_numpy()
    shared_la = rng.normal(0.0, 1.0, len(la_codes))
    rho = LA_EFFECT_CORRELATION
    truth: dict[str, dict[str, Any]] = {}
    for outcome in OUTCOMES:
        spec = TRUE_PARAMETERS[outcome]
        own_la = rng.normal(0.0, 1.0, len(la_codes))
        z_la = np.sqrt(rho) * shared_la + np.sqrt(1.0 - rho) * own_la
        params: dict[str, Any] = {
            "intercept": float(np.log(spec["rate_per_10k"] / 10_000)),
            "centre": dict(centre),
            "beta_per_unit": {"imd": 0.0, **spec["beta_per_unit"]},
            "sigma_la": spec["sigma_la"],
            "sigma_region": spec["sigma_region"],
            "sigma_year": spec["sigma_year"],
            "phi": spec["phi"],
            "la_effect": pd.Series(
                spec["sigma_la"] * z_la, index=pd.Index(la_codes, name="la_code")
            ),
            "region_effect": pd.Series(
                rng.normal(0.0, spec["sigma_region"], len(REGIONS)),
                index=pd.Index(list(REGIONS), name="region"),
            ),
            "year_effect": pd.Series(
                rng.normal(0.0, spec["sigma_year"], len(years)),
                index=pd.Index(years, name="year"),
            ),
        }
        params["beta_per_unit"] = {c: params["beta_per_unit"][c] for c in COVARIATES}
        params["log_rate"] = true_log_rate(panel, params=params)
        counts = simulate_outcome(panel, params=params, rng=rng)
        panel[outcome] = pd.array(np.where(observed, counts, 0), dtype="Int64")
        panel.loc[~observed, outcome] = pd.NA
        truth[outcome] = params

    for col in FLAGGED:
        panel[missing_column(col)] = pd.array([pd.NA] * len(panel), dtype="string")
    panel = _add_child_poverty(panel, seed)
    panel = _add_workforce(panel, seed)
    panel = _add_cla_flows(panel, seed)
    for col in OUTCOMES:
        panel.loc[~observed, missing_column(col)] = MissingReason.NOT_YET_PUBLISHED.value
    panel = suppress_small_counts(panel, below=suppress_below, known_range=known_range)
    panel = _add_inspections(panel, seed)
    panel["synthetic"] = True
    panel = validate_panel(panel, source=f"simulated panel (seed {seed})")
    panel.attrs["synthetic"] = True
    panel.attrs["seed"] = seed
    return SimulatedPanel(panel=panel, truth=truth)
