"""The cart's hardware, each behind a small interface chosen by URL: scale, camera, scanner, printer, slide-out."""
