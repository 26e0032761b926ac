"""The dashboard's blueprints: data pages (published marts), settings and projects (control plane)."""
