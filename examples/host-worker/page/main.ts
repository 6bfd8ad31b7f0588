import "edge-upload/element";

interface Recorded {
  id: string;
  digest: string;
  size: number;
  metadata: Record<string, string>;
  link: string;
}

const form = document.querySelector<HTMLFormElement>("#sign-in");
const who = document.querySelector<HTMLOutputElement>("#who");
const list = document.querySelector<HTMLUListElement>("#recorded");

async function showRecorded(): Promise<number> {
  const res = await fetch("/api/uploads");
  if (!res.ok || !list) return 0;
  const uploads = (await res.json()) as Recorded[];
  list.replaceChildren(
    ...uploads.map((u) => {
      const item = document.createElement("li");
      const link = Object.assign(document.createElement("a"), { href: u.link, textContent: u.metadata.filename ?? u.digest });
      item.append(link, ` ${u.size} bytes, ${u.digest}`);
      return item;
    }),
  );
  return uploads.length;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = new FormData(form).get("name");
  const res = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
  if (who) who.value = res.ok ? `signed in as ${String(name)}` : "sign-in refused";
  await showRecorded();
});

// The queue delivers the event a moment after the upload is done: look a few times.
document.addEventListener("upload-done", async () => {
  const before = list?.children.length ?? 0;
  for (let i = 0; i < 10 && (await showRecorded()) <= before; i++) await new Promise((resolve) => setTimeout(resolve, 1000));
});

void showRecorded();
