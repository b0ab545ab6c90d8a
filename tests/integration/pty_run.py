#!/usr/bin/env python3
"""pty_run.py -- runs a command on a pseudo-terminal of COLS x ROWS and
records what it wrote, for tests of the tty display.

Usage: pty_run.py RAW_OUT SCREEN_OUT COLS ROWS -- CMD [ARGS...]

RAW_OUT gets the exact bytes. SCREEN_OUT gets the text a terminal would
show at the end (scrollback included), from a minimal emulator of what
the display uses: CR, LF, CSI n A (cursor up), CSI J / CSI K (erase), SGR
(ignored). Exits with the command's exit status.

With PTY_RESIZE=COLS in the environment, the terminal is resized to COLS
columns as soon as the program first moves the cursor up (its panel is
live), and the program gets SIGWINCH as a terminal would send it (sent
directly: the program runs in its own session without a controlling
terminal); the byte offset of the resize goes to RAW_OUT.resize."""
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios


def emulate(data):
    lines = [""]
    row = col = 0
    text = data.decode("utf-8", "replace")
    i = 0
    csi = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
    while i < len(text):
        c = text[i]
        if c == "\x1b":
            m = csi.match(text, i)
            if m:
                arg, cmd = m.group(1), m.group(2)
                n = int(arg) if arg.isdigit() else 0
                if cmd == "A":
                    row = max(0, row - (n or 1))
                elif cmd == "J":
                    lines[row] = lines[row][:col]
                    del lines[row + 1:]
                elif cmd == "K":
                    lines[row] = lines[row][:col]
                i = m.end()
                continue
            i += 1
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            col = 0
            while len(lines) <= row:
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + c + line[col + 1:]
            col += 1
        i += 1
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main():
    raw_out, screen_out, cols, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as the program wrote it
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    chunks = []
    resize = int(os.environ.get("PTY_RESIZE", "0") or 0)
    seen = 0
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the pty
            break
        if not b:
            break
        chunks.append(b)
        seen += len(b)
        if resize and re.search(rb"\x1b\[[0-9]+A", b"".join(chunks)):
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, resize, 0, 0))
            try:
                os.killpg(proc.pid, signal.SIGWINCH)  # the whole group, as a tty does
            except ProcessLookupError:
                pass
            with open(raw_out + ".resize", "w") as f:
                f.write("%d\n" % seen)
            resize = 0
    rc = proc.wait()
    data = b"".join(chunks)
    with open(raw_out, "wb") as f:
        f.write(data)
    with open(screen_out, "w") as f:
        f.write(emulate(data))
    sys.exit(rc)


if __name__ == "__main__":
    main()
