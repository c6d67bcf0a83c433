FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY leadrecord ./leadrecord
COPY contacts ./contacts
COPY handoff ./handoff
COPY reports ./reports
RUN pip install --no-cache-dir -c constraints.txt .
COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 leadrecord && mkdir -p /app/data && chown leadrecord /app/data
USER leadrecord
EXPOSE 8000
