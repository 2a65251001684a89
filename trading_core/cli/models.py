"""``trading models list|train|promote|rollback|show|bootstrap|drift [--json]``: the model lifecycle.

Parsing imports nothing heavy; each handler imports ``trading_core.ml`` (sklearn, xgboost, MLflow)
when it runs, so ``trading --help`` stays fast. Tracking store and warehouse come from the config
(``models.tracking``, default ``data/mlflow/``). Writes go to the warehouse file directly, like
``trading features update``: run them when no Dagster step is writing it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="train, register, promote and watch the signal models",
                       description="Model lifecycle: walk-forward training, MLflow registry aliases "
                                   "(champion/challenger), promotion by rule, rollback, drift (docs/models.md).")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        a = msub.add_parser(name, help=help_, description=help_)
        a.add_argument("--json", action="store_true", help="print the result as JSON")
        a.set_defaults(handler=_run, action=name)
        return a

    add("list", "registered versions with their aliases and walk-forward scores")
    add("train", "walk-forward all models, register the chosen one as challenger, apply the promotion rule")
    pr = add("promote", "apply the promotion rule to the challenger (or --version)")
    pr.add_argument("--version", type=int, help="model version (default: the challenger)")
    pr.add_argument("--force", action="store_true", help="promote even if the rule refuses (recorded as forced)")
    add("rollback", "point champion back at the version it replaced")
    sh = add("show", "one version: tags, aliases, artifact hash")
    sh.add_argument("--version", type=int, help="model version (default: the champion)")
    sh.add_argument("--alias", default="champion", help="alias to resolve when no --version (default champion)")
    add("bootstrap", "train and register the first champion when the registry has none (idempotent)")
    dr = add("drift", "feature/prediction/performance drift of the champion (stored in ml.drift_*)")
    dr.add_argument("--version", type=int, help="model version (default: the champion)")


def _context(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from ..config import load_config
    from ..ml.registry import Registry
    from ..warehouse import Warehouse

    cfg = load_config(getattr(args, "config", None))
    wh = Warehouse(cfg.warehouse.path)
    wh.migrate()
    return cfg.models, wh, Registry.from_config(cfg.models, cfg.data_dir)


def _run(args: argparse.Namespace) -> int:
    from ..ml import lifecycle as lc

    models, wh, reg = _context(args)
    action = args.action
    if action == "list":
        out = lc.list_versions(reg)
    elif action == "train":
        out = lc.train(models, wh, reg)
    elif action == "promote":
        out = lc.promote(models, wh, reg, args.version, force=args.force)
    elif action == "rollback":
        out = lc.rollback(models, wh, reg)
    elif action == "show":
        out = lc.show(reg, args.version, args.alias)
    elif action == "bootstrap":
        out = lc.ensure_champion(models, wh, reg)
    else:
        out = lc.drift_check(models, wh, reg, args.version)
    print(json.dumps(out, indent=2, default=str) if args.json else _text(action, out))
    return 0


def _text(action: str, out: dict[str, Any]) -> str:
    if action == "list":
        lines = [f"{out['model']} ({out['tracking_uri']})"]
        for v in out["versions"]:
            al = ",".join(v["aliases"]) or "-"
            score = f"{v['wf_score']:.4f}" if v["wf_score"] is not None else "?"
            lines.append(f"  v{v['version']:<4} {al:<22} {v['kind'] or '?':<14} {v['score_metric']}={score} "
                         f"status={v['status']}")
        if not out["versions"]:
            lines.append("  no versions; run `trading models bootstrap`")
        return "\n".join(lines)
    if action in ("train", "bootstrap") and "version" in out:
        d = out["decision"]
        lines = [f"{out['model']} v{out['version']} ({out['chosen']}) registered; "
                 f"{'promoted to champion' if d['promoted'] else 'not promoted'}: {'; '.join(d['reasons'])}"]
        lines += [f"  note: {n}" for n in out["notes"]]
        for k, s in out["scores"].items():
            tr = out["trading"].get(k, {})
            lines.append(f"  {k:<14} auc={s['auc']:.4f} bal_acc={s['balanced_accuracy']:.4f} "
                         f"log_loss={s['log_loss']:.4f} oos_return={tr.get('total_return') or 0:.2%} "
                         f"trades={tr.get('trades')}")
        return "\n".join(lines)
    if action == "bootstrap":
        return f"{out['model']}: champion v{out['champion']} already registered"
    if action in ("promote", "rollback"):
        return (f"{out['model_name']} v{out['version']}: {out['action']} "
                f"({'champion' if out['promoted'] else 'refused'}); champion is v{out['champion']}: "
                + "; ".join(out["reasons"]))
    if action == "drift":
        lines = [f"{out['model_name']} v{out['version']} drift {out['status']} (features {out['feature_status']}, "
                 f"predictions {out['prediction_status']}, performance {out['performance_status']}) "
                 f"window {out['window_start'][:10]}..{out['window_end'][:10]}"]
        lines += [f"  {r['item']:<16} psi={r['psi']:.3f} ks_p={r['ks_pvalue']:.2g} {r['status']}" for r in out["features"]]
        return "\n".join(lines)
    return json.dumps(out, indent=2, default=str)
