"""WSGI entry point (gunicorn sparkexport.wsgi)."""
import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkexport.settings")
application = get_wsgi_application()

# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's full scans, which otherwise cost a large request (a 1,000-version POST) half
# its time.
gc.freeze()
