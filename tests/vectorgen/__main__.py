from tests.vectorgen import write_all

if __name__ == "__main__":
    changed = write_all()
    print(f"{len(changed)} vector files written" + (": " + ", ".join(changed) if changed else ""))
