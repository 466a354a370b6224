"""The import side, all in one place: an uploaded package checked and planned at upload
(services.py, upload.py, plan.py), applied all or nothing by the worker (apply.py), its API
(api/) and its admin (admin.py). Its jobs share the lifecycle of exports (exports/lifecycle.py)."""
