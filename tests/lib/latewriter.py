"""A writer that comes late: what regionctl meets when it reads a FIFO or a
pipe before the process feeding it has opened or written it."""
import threading
import time


def write_later(path, data, delay=0.5):
    """Open @path (a FIFO's name, or a pipe's write end as an int: closed
    after) for writing once @delay seconds have passed, write @data, close."""
    def run():
        time.sleep(delay)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
