"""Stage 3, the resolved fleet: frozen views built once (resolve), and what is drawn from them (ports, diagram)."""
