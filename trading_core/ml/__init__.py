"""The model lifecycle: point-in-time datasets and labels, purged walk-forward evaluation of a
logistic baseline, a random forest, XGBoost and their ensemble, MLflow tracking and a registry with
``champion``/``challenger`` aliases, promotion by rule, verified loading, and drift (docs/models.md).

Submodules import their heavy dependencies (sklearn, xgboost, mlflow, shap) inside functions, so
``import trading_core.ml`` is cheap.
"""
