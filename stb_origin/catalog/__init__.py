"""The catalog: titles, series and episodes, genres, ratings, availability and artwork."""
