"""How a line looks: the Line value, its text, JSON and ECS renderings, escaping."""
