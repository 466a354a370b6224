"""WSGI entry point (gunicorn sparkexport.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkexport.settings")
application = get_wsgi_application()
