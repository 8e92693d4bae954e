"""Real Python clients through Lagless: PyMySQL and SQLAlchemy.

Run by the Rust integration suite (crates/lagless/tests) against a sandbox and a running proxy:
    python clients.py --port PORT [--host 127.0.0.1] [--socket PATH]
Users expected in the proxy config: app/lagless (both hashes), sha2only/sha2pass (only a
caching_sha2_password hash), nativeonly/nativepass (only a native hash).
Prints one line per check and a closing 'N passed, N failed' line; exits 1 if any failed.
"""

import os
import tempfile

import pymysql
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from checks import check, main


def connect(args, user="app", password="lagless", **kw):
    # Over a Unix socket PyMySQL sends a caching_sha2_password in clear (the socket is local),
    # where over TCP it asks for the server's RSA key.
    where = {"unix_socket": args.socket} if args.socket else {"host": args.host, "port": args.port}
    return pymysql.connect(user=user, password=password, database="app", **where, **kw)


@check
def native_login_and_query(args):
    with connect(args) as c, c.cursor() as cur:
        cur.execute("SELECT 1 + 1")
        assert cur.fetchone() == (2,)


@check
def wrong_password_is_access_denied(args):
    try:
        connect(args, password="wrong")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args
        assert "Access denied" in e.args[1], e.args
        return
    raise AssertionError("login with a wrong password succeeded")


@check
def unknown_user_is_access_denied(args):
    try:
        connect(args, user="nobody", password="x")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args
        return
    raise AssertionError("unknown user logged in")


@check
def caching_sha2_full_then_fast(args):
    # The first login does full authentication (the password RSA-encrypted over TCP, in clear
    # over a Unix socket), the second the fast path.
    for _ in range(2):
        with connect(args, user="sha2only", password="sha2pass") as c, c.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith("app@"), "backend login is the cluster account"
    try:
        connect(args, user="sha2only", password="bad")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args
    else:
        raise AssertionError("sha2 login with a wrong password succeeded")


@check
def native_only_user_switched_from_sha2(args):
    with connect(args, user="nativeonly", password="nativepass",
                 auth_plugin_map={}) as c, c.cursor() as cur:
        cur.execute("SELECT 'ok'")
        assert cur.fetchone() == ("ok",)


@check
def writes_reads_and_last_insert_id(args):
    with connect(args, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS py_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))")
        cur.execute("INSERT INTO py_items (name) VALUES (%s)", ("widget",))
        new_id = cur.lastrowid
        assert new_id > 0
        cur.execute("SELECT LAST_INSERT_ID()")
        assert cur.fetchone()[0] == new_id
        cur.execute("SELECT name FROM py_items WHERE id = %s", (new_id,))
        assert cur.fetchone() == ("widget",)
        cur.execute("UPDATE py_items SET name = 'gadget' WHERE id = %s", (new_id,))
        assert cur.rowcount == 1


@check
def multi_statement_multi_results(args):
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with connect(args, client_flag=flags) as c, c.cursor() as cur:
        cur.execute("SELECT 1; SELECT 2, 3; DO 0")
        assert cur.fetchall() == ((1,),)
        assert cur.nextset()
        assert cur.fetchall() == ((2, 3),)
        assert cur.nextset()
        assert not cur.nextset()


@check
def transaction_rollback(args):
    with connect(args) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS py_tx (id INT PRIMARY KEY)")
        cur.execute("DELETE FROM py_tx")
        c.commit()
        c.begin()
        cur.execute("INSERT INTO py_tx VALUES (1)")
        c.rollback()
        cur.execute("SELECT COUNT(*) FROM py_tx")
        assert cur.fetchone() == (0,)


@check
def load_data_local_is_refused(args):
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("1\n2\n")
        path = f.name
    try:
        with connect(args, local_infile=True) as c, c.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS py_load (id INT)")
            try:
                cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE py_load")
            except (pymysql.err.OperationalError, pymysql.err.InternalError,
                    pymysql.err.ProgrammingError, pymysql.err.NotSupportedError) as e:
                assert e.args[0] in (1148, 4166), e.args  # command not allowed / local infile disabled
                return
            raise AssertionError("LOAD DATA LOCAL was accepted")
    finally:
        os.unlink(path)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "sa_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(sa.String(50))
    total: Mapped[int]


@check
def sqlalchemy_orm_session(args):
    url = (f"mysql+pymysql://app:lagless@/app?unix_socket={args.socket}" if args.socket
           else f"mysql+pymysql://app:lagless@{args.host}:{args.port}/app")
    engine = sa.create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Order(customer="ada", total=10))
        s.flush()  # INSERT inside the transaction; the id comes back from the same backend
        o = s.scalars(sa.select(Order).where(Order.customer == "ada")).one()
        assert o.id is not None
        o.total = 42
        s.commit()
    with Session(engine) as s:
        assert s.scalars(sa.select(Order.total).where(Order.customer == "ada")).one() == 42
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
    engine.dispose()


def status(args, name):
    with connect(args) as c, c.cursor() as cur:
        cur.execute("SHOW LAGLESS STATUS")
        return int(dict(cur.fetchall())[name])


@check
def set_names_answered_by_lagless_and_replayed(args):
    # Frameworks send SET NAMES on every connection; once the primary answered a statement,
    # Lagless answers it itself (no round trip), and a read on any server then has the
    # character set and the collation the statement asked for.
    before = status(args, "set_names_answered")
    seen = set()
    for i in range(12):
        stmt, want = [
            ("SET NAMES latin1 COLLATE latin1_bin", ("latin1", "latin1", "latin1_bin")),
            ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'",
             ("utf8mb4", "utf8mb4", "utf8mb4_unicode_ci")),
            ("SET NAMES latin1", ("latin1", "latin1", "latin1_swedish_ci")),
        ][i % 3]
        with connect(args, autocommit=True) as c, c.cursor() as cur:
            cur.execute(stmt)
            for _ in range(2):
                cur.execute("SELECT @@character_set_client, @@character_set_results, "
                            "@@collation_connection")
                got = cur.fetchone()
                assert got == want, (stmt, got)
            seen.add(stmt)
    answered = status(args, "set_names_answered") - before
    # PyMySQL sends its own SET NAMES at connect too; each distinct statement reaches the
    # primary once (at most), every later one is answered here.
    assert answered >= 12 - len(seen), answered
    # An unknown character set still gets the server's error, every time.
    for _ in range(2):
        with connect(args) as c, c.cursor() as cur:
            try:
                cur.execute("SET NAMES no_such_charset")
                raise AssertionError("no error")
            except pymysql.err.OperationalError as e:
                assert e.args[0] == 1115, e


if __name__ == "__main__":
    main("python: ")
