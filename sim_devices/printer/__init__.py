"""A simulated label/receipt printer: TSPL, ZPL and ESC/POS jobs in, recorded jobs and PNGs out.

Written from the language subset shared with the cart's encoders, never from their code (nothing
is imported from ``edge``).  ``SimPrinter`` listens on raw TCP (AppSocket, default 9100) and
optionally a pty, detects each stream's language from its first non-whitespace byte (``^``/``~``
ZPL; ESC/FS/GS/DLE ESC/POS; otherwise TSPL — and again between jobs, so a pty can carry several),
answers status queries at once, renders each job as a PNG (one pixel per dot) and records::

    {"id", "language", "qr": [payloads], "texts": [...], "bitmaps": n, "png": path, "bytes": n,
     "warnings": [...], "at": iso time, "source": "tcp"|"pty", "size": [w, h]}

The subset (dots, origin top-left, 8 dots/mm):

TSPL — lines ending CR LF (or LF).  ``SIZE w mm,h mm`` (no unit = inches) sets the canvas;
``GAP DIRECTION REFERENCE DENSITY SPEED CODEPAGE`` accepted; ``CLS`` clears the image buffer;
``TEXT x,y,"font",0,xm,ym,"content"`` (fonts "1".."8" ASCII, "TSS24.BF2" GB18030, ``\\["]`` = ");
``QRCODE x,y,ECC,cell,A,0,"content"``; ``BITMAP x,y,width_bytes,h,mode,<raw>`` (**0 bit = black**);
``BAR x,y,w,h``; ``BOX x,y,xe,ye,t``; ``PRINT 1,1`` ends the job.  Status ``ESC ! ?`` → one byte
0x00 ready / 0x04 paper out.

ZPL — ``^XA`` … ``^XZ`` is one job; ``^PW ^LL`` (default 812×812), ``^CI28`` (UTF-8), ``^LH ^FX``;
fields ``^FOx,y`` + ``^A0N,h,w`` / ``^A@N,h,w,E:X.TTF`` + ``^FDtext^FS``, ``^BQN,2,m^FDQA,payload^FS``,
``^GFA,b,b,r,HEX^FS`` (**1 bit = black**), ``^GBw,h,t^FS`` (t ≥ min(w,h): filled).  Others warn.
Status ``~HS`` → three STX…ETX CR LF lines, field 2 of the first = 1 when out of paper.

ESC/POS — a stream laid out down 576 (or ``width_dots``) dots: ``ESC @``, ``ESC a n``, ``GS ! n``,
``ESC E n``, text to LF (12×24 ASCII, 24×24 GB18030 between ``FS &`` and ``FS .``), QR via
``GS ( k`` cn=49 (fn 65 model, 67 size, 69 ECC 48..51 = L..H, 80 store, 81 print), ``GS v 0``
raster (**1 bit = black**), ``ESC d n``; ``GS V`` cut ends a job (so does the end of the stream,
or 2 s of silence on the pty, when something was printed).  Status ``DLE EOT 4`` → 0x12 / 0x72
paper end; ``DLE EOT 1`` → 0x16 online / 0x1E (stopped: paper out).

States: ``ok``; ``paper_out`` (status says so, jobs are dropped and counted); ``offline`` (TCP
refused and open connections cut, the pty hears nothing).  Unknown or malformed commands become
warnings in the job that contains them; they never stop the printer.
"""

from sim_devices.printer.model import Bitmap, Box, Event, Label, Qr, StatusQuery, Text
from sim_devices.printer.server import SimPrinter
from sim_devices.printer.stream import PrinterStream, status_reply

__all__ = ["Bitmap", "Box", "Event", "Label", "PrinterStream", "Qr", "SimPrinter", "StatusQuery", "Text",
           "status_reply"]
